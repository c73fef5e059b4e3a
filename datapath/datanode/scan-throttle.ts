/** @module
 * The container scanner's pacing (container-scanner.ts): a byte budget per period, as
 * Hadoop's DataTransferThrottler that Ozone's data scanner uses, and the wait that makes one
 * full pass last at least its interval. Pure: time comes in as `nowMs`, nothing sleeps here.
 */
import { assert } from '../../core/assert.ts'

/** The budget's period: short enough that a burst after idle stays small, long enough that a 4 MiB chunk costs a few. */
export const SCAN_THROTTLE_PERIOD_MS = 500

export interface ThrottleState {
  /** Start of the period the reserve belongs to. */
  periodStartMs: number
  /** Bytes the period has left (negative: owed, paid by waiting). */
  reserveBytes: number
}

/** A throttle starting at `nowMs` with one period's budget. */
export function startThrottle(nowMs: number, bytesPerSec: number, periodMs = SCAN_THROTTLE_PERIOD_MS): ThrottleState {
  return { periodStartMs: nowMs, reserveBytes: periodBytes(bytesPerSec, periodMs) }
}

function periodBytes(bytesPerSec: number, periodMs: number): number {
  assert(bytesPerSec > 0, 'bytesPerSec must be positive')
  assert(periodMs > 0, 'periodMs must be positive')
  return (bytesPerSec * periodMs) / 1000
}

/**
 * Takes `bytes` just read from the budget at `nowMs`: the new state and how long to wait
 * before reading more. Periods that passed refill the reserve, at most to one period's worth
 * (a scanner that paused does not get to burst); a reserve overdrawn is paid back by waiting
 * whole periods, so over any stretch the bytes read stay within bytesPerSec plus one period's.
 */
export function throttleStep(s: ThrottleState, bytes: number, nowMs: number, bytesPerSec: number, periodMs = SCAN_THROTTLE_PERIOD_MS): { state: ThrottleState; waitMs: number } {
  assert(bytes >= 0, 'bytes must not be negative')
  const perPeriod = periodBytes(bytesPerSec, periodMs)
  let start = s.periodStartMs
  let reserve = s.reserveBytes
  if (nowMs >= start + periodMs) {
    const passed = Math.floor((nowMs - start) / periodMs)
    start += passed * periodMs
    reserve = Math.min(perPeriod, reserve + passed * perPeriod)
  }
  reserve -= bytes
  if (reserve >= 0) return { state: { periodStartMs: start, reserveBytes: reserve }, waitMs: 0 }
  const owed = Math.ceil(-reserve / perPeriod)
  const resumeAtMs = start + owed * periodMs
  return { state: { periodStartMs: resumeAtMs, reserveBytes: reserve + owed * perPeriod }, waitMs: Math.max(0, resumeAtMs - nowMs) }
}

/** How long to wait after a pass that started at `startedAtMs` so that it lasts `intervalMs` at least. */
export function passDelayMs(startedAtMs: number, nowMs: number, intervalMs: number): number {
  return Math.max(0, startedAtMs + intervalMs - nowMs)
}
