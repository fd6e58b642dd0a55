import Foundation
import Prometheus

/// The server's Prometheus metrics (`GET /metrics`), in one registry owned by the server (no global
/// metrics system, so several servers — tests — can live in one process).
final class ServiceMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let queued: Gauge
    let running: Gauge
    let windowsPerSecond: Gauge
    let windows: Counter

    init() {
        queued = registry.makeGauge(name: "aerialseg_jobs_queued", help: "Jobs waiting for a worker")
        running = registry.makeGauge(name: "aerialseg_jobs_running", help: "Jobs running")
        windowsPerSecond = registry.makeGauge(name: "aerialseg_windows_per_second",
                                              help: "Windows per second of the job that finished last")
        windows = registry.makeCounter(name: "aerialseg_windows_total", help: "Windows segmented by jobs")
    }

    /// Counts one answered request (route = the matched pattern, e.g. `/v1/jobs/{id}`).
    func request(method: String, route: String, status: Int, seconds: Double) {
        let labels = [("method", method), ("route", route), ("code", "\(status)")]
        registry.makeCounter(name: "aerialseg_http_requests_total", labels: labels,
                             help: "HTTP requests by route and status").increment()
        registry.makeDurationHistogram(name: "aerialseg_http_request_duration_seconds",
                                       labels: [("route", route)], buckets: Self.requestBuckets,
                                       help: "HTTP request durations").record(.seconds(seconds))
    }

    /// Records a job that ended (`status`: succeeded, failed, cancelled, interrupted).
    func jobEnded(model: String, status: String, seconds: Double, windows: Int) {
        registry.makeDurationHistogram(name: "aerialseg_job_duration_seconds",
                                       labels: [("model", model), ("status", status)], buckets: Self.jobBuckets,
                                       help: "Job run times (one start)").record(.seconds(seconds))
        self.windows.increment(by: Int64(windows))
        if seconds > 0, windows > 0 { windowsPerSecond.set(Double(windows) / seconds) }
    }

    func text() -> String { registry.emitToString() }

    private static let requestBuckets: [Duration] = [0.001, 0.005, 0.025, 0.1, 0.5, 2.5, 10, 60].map { .seconds($0) }
    private static let jobBuckets: [Duration] = [1, 5, 15, 60, 300, 900, 3600, 14400].map { .seconds($0) }
}
