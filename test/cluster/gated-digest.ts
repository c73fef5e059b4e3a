/** @module
 * Test helper: a key digest whose worker pool is busy. Its chunks wait at a gate until open()
 * (then go to the real KeyDigest in the order they came), and so do its end() and hashed():
 * a writer sees a digest that has not read its bytes yet, for as long as a test needs.
 */
import { KeyDigest } from '../../datapath/client/index.ts'

export class GatedDigest extends KeyDigest {
  private readonly gate: Promise<void>
  open!: () => void
  /** Chunks held at the gate. */
  held = 0

  constructor(names: ConstructorParameters<typeof KeyDigest>[0]) {
    super(names)
    this.gate = new Promise<void>((resolve) => { this.open = resolve })
  }

  override chunk(...args: Parameters<KeyDigest['chunk']>): Promise<void> {
    this.held++
    return this.gate.then(() => super.chunk(...args))
  }

  override end(): void {
    void this.gate.then(() => super.end())
  }

  override async hashed(): Promise<void> {
    if (this.held > 0) await this.gate
    return super.hashed()
  }
}
