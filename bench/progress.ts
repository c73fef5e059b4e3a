/** @module
 * Progress while the benchmark runs: a cli-progress bar on a terminal, otherwise one line per
 * step on stderr (so that CI logs and pipes stay readable). Figures go to stdout, never here.
 */
import cliProgress from 'cli-progress'

export class Progress {
  private readonly bar: cliProgress.SingleBar | undefined
  private done = 0
  private stopped = false
  private readonly startedMs = performance.now()

  constructor(readonly total: number) {
    if (process.stderr.isTTY) {
      this.bar = new cliProgress.SingleBar({
        format: 'bench [{bar}] {value}/{total} {step}', stream: process.stderr, clearOnComplete: true, hideCursor: true,
      }, cliProgress.Presets.shades_classic)
      this.bar.start(total, 0, { step: '' })
    }
  }

  /** Announces the step about to run. */
  step(name: string): void {
    if (this.bar !== undefined) this.bar.update(this.done, { step: name })
    else process.stderr.write(`bench ${this.done + 1}/${this.total} at ${((performance.now() - this.startedMs) / 1000).toFixed(1)} s: ${name}\n`)
    this.done++
  }

  /** Ends the bar; later calls do nothing. */
  stop(): void {
    if (this.stopped) return
    this.stopped = true
    this.bar?.update(this.total, { step: 'done' })
    this.bar?.stop()
  }
}
