/** @module
 * Prometheus metrics per service, on prom-client (each service owns a registry, so several
 * services in one process report separately): RPC counts and latencies, bytes in and out,
 * and gauges the service computes when scraped.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client'

export class ServiceMetrics {
  readonly registry = new Registry()
  readonly rpcRequests: Counter<'method' | 'code'>
  readonly rpcSeconds: Histogram<'method'>
  readonly bytesIn: Counter
  readonly bytesOut: Counter

  constructor(readonly service: string) {
    this.registry.setDefaultLabels({ service })
    const prefix = `o3_${service}`
    this.rpcRequests = new Counter({ name: `${prefix}_rpc_requests_total`, help: 'RPC requests by method and result code', labelNames: ['method', 'code'], registers: [this.registry] })
    this.rpcSeconds = new Histogram({ name: `${prefix}_rpc_seconds`, help: 'RPC latency by method', labelNames: ['method'], buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10], registers: [this.registry] })
    this.bytesIn = new Counter({ name: `${prefix}_bytes_in_total`, help: 'Payload bytes received', registers: [this.registry] })
    this.bytesOut = new Counter({ name: `${prefix}_bytes_out_total`, help: 'Payload bytes sent', registers: [this.registry] })
  }

  /** A counter of this service's registry, named `o3_<service>_<name>`. */
  counter(name: string, help: string): Counter {
    return new Counter({ name: `o3_${this.service}_${name}`, help, registers: [this.registry] })
  }

  /** A gauge whose value is computed at scrape time. */
  gauge(name: string, help: string, read: () => number): void {
    new Gauge({ name: `o3_${this.service}_${name}`, help, registers: [this.registry], collect() { this.set(read()) } })
  }

  /** A gauge with one series per `label` value, as `read` lists them at scrape time (series gone from it are dropped). */
  labeledGauge(name: string, help: string, label: string, read: () => Iterable<readonly [string, number]>): void {
    new Gauge({
      name: `o3_${this.service}_${name}`, help, labelNames: [label], registers: [this.registry],
      collect() {
        this.reset()
        for (const [value, n] of read()) this.set({ [label]: value }, n)
      },
    })
  }

  text(): Promise<string> {
    return this.registry.metrics()
  }
}
