/**
 * Records, provider records and where they are kept: the `RecordStore` contract and
 * `MemoryStore`, as rust-libp2p's (with its default limits). Times are `Date.now()`
 * milliseconds.
 *
 * @module
 */
import { ConfigError, PeerswarmError } from '../../core/errors.js'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** A value stored in the DHT under `key`. */
export interface Record {
  readonly key: Uint8Array
  readonly value: Uint8Array
  /** Who published it first (set to us by `putRecord`); republished by it alone. */
  readonly publisher?: PeerId
  /** When it expires (`Date.now()` ms); `undefined`: never, locally. */
  readonly expires?: number
}

/** `provider` says it can provide the content of `key`. */
export interface ProviderRecord {
  readonly key: Uint8Array
  readonly provider: PeerId
  /** When it expires (`Date.now()` ms); `undefined`: never. */
  readonly expires?: number
  /** Where the provider can be reached (empty for our own: filled in when sent). */
  readonly addresses: readonly Multiaddr[]
}

/** Why a store refused something. */
export type StoreErrorKind = 'MaxRecords' | 'ValueTooLarge' | 'MaxProvidedKeys'

/** A store refused a record or provider record; `kind` says which limit. */
export class StoreError extends PeerswarmError {
  constructor (readonly kind: StoreErrorKind, message: string) {
    super(`ERR_KAD_STORE_${kind.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase()}`, message)
  }
}

/** Where a Kademlia behaviour keeps records and provider records (rust's `RecordStore`). */
export interface RecordStore {
  /** The record under `key`, unless absent or expired. */
  get(key: Uint8Array): Record | undefined
  /** Store `record`, replacing one of the same key; throws `StoreError` at a limit. */
  put(record: Record): void
  /** Forget the record under `key`, if any. */
  remove(key: Uint8Array): void
  /** Every record (expired ones may be included; the behaviour removes them). */
  records(): Iterable<Record>
  /** Add or refresh a provider of a key; throws `StoreError` at a limit. */
  addProvider(record: ProviderRecord): void
  /** The providers of `key` that have not expired. */
  providers(key: Uint8Array): ProviderRecord[]
  /** The keys we provide ourselves (our own provider records). */
  provided(): Iterable<ProviderRecord>
  /** Forget `provider` as a provider of `key`, if it is one. */
  removeProvider(key: Uint8Array, provider: PeerId): void
}

/** Limits of a {@link MemoryStore} (rust-libp2p's defaults). */
export interface MemoryStoreConfig {
  /** Records kept (default 1024). */
  readonly maxRecords: number
  /** Largest value, in bytes (default 65 KiB). */
  readonly maxValueBytes: number
  /** Providers kept per key (default 20); further ones are ignored. */
  readonly maxProvidersPerKey: number
  /** Keys with provider records, ours and others' (default 1024, as rust counts them). */
  readonly maxProvidedKeys: number
}

/** Defaults of {@link MemoryStoreConfig}. */
export const defaultMemoryStoreConfig: MemoryStoreConfig = Object.freeze({
  maxRecords: 1024,
  maxValueBytes: 65 * 1024,
  maxProvidersPerKey: 20,
  maxProvidedKeys: 1024
})

/** A key as a map key. */
export function keyString (key: Uint8Array): string {
  let out = ''
  for (let i = 0; i < key.length; i++) out += HEX[key[i]]
  return out
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))

/**
 * Records and provider records in memory, bounded by {@link MemoryStoreConfig}. Expired
 * entries are dropped as they are met, and swept when a limit is reached.
 */
export class MemoryStore implements RecordStore {
  /** The limits. */
  readonly config: MemoryStoreConfig
  private readonly local: string
  private readonly recordMap = new Map<string, Record>()
  private readonly providerMap = new Map<string, ProviderRecord[]>()
  private readonly providedMap = new Map<string, ProviderRecord>()

  constructor (localPeerId: PeerId, limits: Partial<MemoryStoreConfig> = {}) {
    const config = { ...defaultMemoryStoreConfig, ...limits }
    for (const field of ['maxRecords', 'maxValueBytes', 'maxProvidersPerKey', 'maxProvidedKeys'] as const) {
      const value = config[field]
      if (!Number.isSafeInteger(value) || value < 1) throw new ConfigError(field, `must be a positive integer, got ${String(value)}`)
    }
    this.config = Object.freeze(config)
    this.local = localPeerId.toString()
  }

  /** How many records are stored (expired ones not yet swept included). */
  get size (): number {
    return this.recordMap.size
  }

  get (key: Uint8Array): Record | undefined {
    const id = keyString(key)
    const record = this.recordMap.get(id)
    if (record === undefined) return undefined
    if (expired(record.expires)) {
      this.recordMap.delete(id)
      return undefined
    }
    return record
  }

  put (record: Record): void {
    if (record.value.byteLength > this.config.maxValueBytes) {
      throw new StoreError('ValueTooLarge', `the value has ${record.value.byteLength} bytes, more than ${this.config.maxValueBytes}`)
    }
    const id = keyString(record.key)
    if (!this.recordMap.has(id) && this.recordMap.size >= this.config.maxRecords) {
      this.sweepRecords()
      if (this.recordMap.size >= this.config.maxRecords) throw new StoreError('MaxRecords', `the store holds ${this.config.maxRecords} records already`)
    }
    this.recordMap.set(id, record)
  }

  remove (key: Uint8Array): void {
    this.recordMap.delete(keyString(key))
  }

  records (): Iterable<Record> {
    return [...this.recordMap.values()]
  }

  addProvider (record: ProviderRecord): void {
    const id = keyString(record.key)
    let providers = this.providerMap.get(id)
    if (providers === undefined) {
      if (this.providerMap.size >= this.config.maxProvidedKeys) {
        this.sweepProviders()
        if (this.providerMap.size >= this.config.maxProvidedKeys) {
          throw new StoreError('MaxProvidedKeys', `the store holds providers of ${this.config.maxProvidedKeys} keys already`)
        }
      }
      providers = []
      this.providerMap.set(id, providers)
    }
    const mine = record.provider.toString() === this.local
    const at = providers.findIndex(p => p.provider.equals(record.provider))
    if (at >= 0) {
      providers[at] = record
    } else {
      // Expired providers make room first.
      const live = providers.filter(p => !expired(p.expires))
      if (live.length !== providers.length) {
        providers.length = 0
        providers.push(...live)
      }
      if (providers.length >= this.config.maxProvidersPerKey) return
      providers.push(record)
    }
    if (mine) this.providedMap.set(id, record)
  }

  providers (key: Uint8Array): ProviderRecord[] {
    const id = keyString(key)
    const providers = this.providerMap.get(id)
    if (providers === undefined) return []
    const live = providers.filter(p => !expired(p.expires))
    if (live.length !== providers.length) {
      for (const gone of providers.filter(p => expired(p.expires))) this.removeProvider(key, gone.provider)
    }
    return live
  }

  provided (): Iterable<ProviderRecord> {
    return [...this.providedMap.values()]
  }

  removeProvider (key: Uint8Array, provider: PeerId): void {
    const id = keyString(key)
    const providers = this.providerMap.get(id)
    if (providers === undefined) return
    const at = providers.findIndex(p => p.provider.equals(provider))
    if (at < 0) return
    providers.splice(at, 1)
    if (provider.toString() === this.local) this.providedMap.delete(id)
    if (providers.length === 0) this.providerMap.delete(id)
  }

  private sweepRecords (): void {
    for (const [id, record] of this.recordMap) if (expired(record.expires)) this.recordMap.delete(id)
  }

  private sweepProviders (): void {
    for (const [id, providers] of this.providerMap) {
      const live = providers.filter(p => !expired(p.expires))
      if (live.length === 0) {
        this.providerMap.delete(id)
        this.providedMap.delete(id)
      } else if (live.length !== providers.length) {
        this.providerMap.set(id, live)
      }
    }
  }
}

function expired (expires: number | undefined): boolean {
  return expires !== undefined && expires <= Date.now()
}
