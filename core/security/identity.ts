/** @module
 * A service's place in the secure cluster: its key and certificate from the cluster CA (kept
 * in its data dir, enrolled with the SCM on first start, renewed before expiry), the TLS it
 * serves with and the Transport it calls others through. One per service, several per process.
 */
import { tlsTransport, type Transport } from '../rpc/transport.ts'
import type { Credentials, ServiceRole } from './pki.ts'

export class ServiceIdentity {
  private creds: Credentials
  private readonly outbound: Transport

  private constructor(readonly role: ServiceRole, readonly id: string, creds: Credentials) {
    this.creds = creds
    this.outbound = tlsTransport(() => this.creds)
  }

  /** An identity from credentials already at hand (the SCM's own; tests). */
  static fromCredentials(role: ServiceRole, id: string, creds: Credentials): ServiceIdentity {
    return new ServiceIdentity(role, id, creds)
  }

  /** The current key, certificate and CA; a new object after each renewal. */
  credentials(): Credentials {
    return this.creds
  }

  /** Replaces the credentials (renewal): new connections in and out use them. */
  protected replace(creds: Credentials): void {
    this.creds = creds
  }

  /** What this service serves with (serveApp's `tls`): its certificate, asking peers for theirs. */
  serverTls(): { current: () => { key: string; cert: string; ca: string } } {
    return { current: () => this.creds }
  }

  /** How this service calls the others: HTTPS trusting the CA, showing its certificate. */
  transport(): Transport {
    return this.outbound
  }

  stop(): void {}
}
