/**
 * Kademlia's upkeep over time (rust-libp2p's jobs). In order:
 *
 * 1. the automatic bootstrap: soon after a peer entered a table of fewer than k peers, or when
 *    our interfaces come up while we know peers but are connected to none;
 * 2. the jobs, run at each poll that has work: the periodic bootstrap; every
 *    `replicationInterval`, the records we hold sent again to their k closest (ours at every
 *    `publicationInterval` only, `RepublishRecord`; a record just received is skipped once);
 *    every `providerPublicationInterval`, our provider records announced again
 *    (`RepublishProvider`); at most `JOBS_MAX_QUERIES` queries at once, `JOBS_MAX_NEW_QUERIES`
 *    new ones per poll;
 * 3. the one timer, armed for the earliest deadline: a job, a bootstrap, a query or a pending
 *    routing-table entry.
 *
 * @module
 */
import { logger } from '@libp2p/logger'
import { MAX_TIMER_DELAY } from '../../core/timers.js'
import { NoKnownPeersError } from './errors.js'
import { startAddProvider, startBootstrap, startPutRecord } from './queries.js'
import { keyString } from './store.js'
import type { KadState, PutContext } from './state.js'
import type { ProviderRecord, Record } from './store.js'

const log = logger('peerswarm:kad')

/** Background jobs start at most this many queries at once, and at most this many per poll (rust's). */
const JOBS_MAX_QUERIES = 100
const JOBS_MAX_NEW_QUERIES = 10
/** Delay of the automatic bootstrap after a peer entered a thin table (rust's). */
const AUTOMATIC_BOOTSTRAP_DELAY = 500

/** A bootstrap soon when the table holds fewer than k peers. */
export function bootstrapOnLowPeers (s: KadState): void {
  if (s.table.size < s.config.replicationFactor) triggerBootstrap(s)
}

/** A bootstrap after `AUTOMATIC_BOOTSTRAP_DELAY`, unless one is running. */
export function triggerBootstrap (s: KadState): void {
  if (s.bootstrapQuery !== undefined && s.queries.get(s.bootstrapQuery) !== undefined) return
  s.bootstrapDue ??= performance.now() + AUTOMATIC_BOOTSTRAP_DELAY
  s.wakeUp()
}

/**
 * The due jobs: a bootstrap (automatic or periodic); the replication run (records to send again,
 * ours only at publication time); provider republication; then at most `JOBS_MAX_NEW_QUERIES`
 * new queries for them, providers first.
 */
export function runJobs (s: KadState, now: number): void {
  const bootstrapRunning = s.bootstrapQuery !== undefined && s.queries.get(s.bootstrapQuery) !== undefined
  if (!bootstrapRunning && ((s.bootstrapDue !== undefined && now >= s.bootstrapDue) || (s.periodicBootstrapAt !== undefined && now >= s.periodicBootstrapAt))) {
    s.bootstrapDue = undefined
    try {
      startBootstrap(s)
    } catch (err) {
      if (!(err instanceof NoKnownPeersError)) throw err
      log('periodic bootstrap skipped: no known peer')
    }
  }
  const interval = s.config.replicationInterval
  if (s.replicationAt !== undefined && interval !== null && now >= s.replicationAt) {
    s.replicationAt = now + interval
    const publish = s.nextPublish !== undefined && now >= s.nextPublish
    if (publish && s.config.publicationInterval !== null) s.nextPublish = now + s.config.publicationInterval
    const records: Array<{ record: Record, context: PutContext }> = []
    for (const record of s.store.records()) {
      const mine = record.publisher?.equals(s.localPeerId) === true
      if (s.skipped.has(keyString(record.key)) || (mine && !publish)) continue
      const sent = mine ? { ...record, expires: record.expires ?? s.expiry(s.config.recordTtl) } : record
      records.push({ record: sent, context: mine ? 'republish' : 'replicate' })
    }
    s.skipped.clear()
    s.jobRecords = records
  }
  const providerInterval = s.config.providerPublicationInterval
  if (s.providerPublicationAt !== undefined && providerInterval !== null && now >= s.providerPublicationAt) {
    s.providerPublicationAt = now + providerInterval
    s.jobProviders = [...s.store.provided()]
  }
  let capacity = Math.min(JOBS_MAX_NEW_QUERIES, Math.max(0, JOBS_MAX_QUERIES - s.queries.size))
  while (capacity > 0 && s.jobProviders.length > 0) {
    const record = s.jobProviders.shift() as ProviderRecord
    if (record.expires !== undefined && record.expires <= Date.now()) {
      s.store.removeProvider(record.key, record.provider)
      continue
    }
    startAddProvider(s, record.key, 'republish')
    capacity--
  }
  while (capacity > 0 && s.jobRecords.length > 0) {
    const { record, context } = s.jobRecords.shift() as { record: Record, context: PutContext }
    if (record.expires !== undefined && record.expires <= Date.now()) {
      s.store.remove(record.key)
      continue
    }
    startPutRecord(s, record, 'all', context)
    capacity--
  }
}

/** Arm the one timer for the earliest deadline: a job, a bootstrap, a query or a pending entry. */
export function schedule (s: KadState): void {
  if (s.closed) return
  let at = Infinity
  for (const when of [s.bootstrapDue, s.periodicBootstrapAt, s.replicationAt, s.providerPublicationAt, s.queries.nextDeadline(), s.table.nextPendingDue()]) {
    if (when !== undefined && when < at) at = when
  }
  if (s.jobRecords.length > 0 || s.jobProviders.length > 0) at = Math.min(at, performance.now() + 1_000)
  if (at === s.timerAt) return
  clearTimeout(s.timer)
  s.timer = undefined
  s.timerAt = at
  if (at === Infinity) return
  const delay = Math.min(MAX_TIMER_DELAY, Math.max(0, Math.ceil(at - performance.now())))
  s.timer = setTimeout(() => {
    s.timer = undefined
    s.timerAt = Infinity
    s.wakeUp()
  }, delay)
}
