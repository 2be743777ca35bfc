public import ControlPlane
import DiffStore
import Foundation
import JSON
import RouteTable

/// Why a report could not be made, as the admin API's answer (404 unknown route, 500 unreadable store).
public struct ReportFailure: Error, Sendable {
    public var answer: ControlAnswer
}

extension RouteOperations {
    /// The report of the routes `options.selector` names, with the evidence the gates judge (collected as for
    /// `GET /admin/evidence`: the diff store since each route's last stage change, the services' health and sync,
    /// reconcile records, reverse sync). What `GET /admin/report` serves and `strangler report` renders.
    ///
    /// ```swift
    /// let report = try await operations.report(ReportOptions(selector: "contacts.get"), source: "routes.json").get()
    /// report.routes[0].verdict.text   // "not ready to eliminate"
    /// ```
    public func report(_ options: ReportOptions, source: String) async -> Result<Report, ReportFailure> {
        let snapshot = self.control.table.liveTable
        let routes: [Route]
        switch ReportBuilder.select(options.selector, in: snapshot.table) {
        case .success(let selected): routes = selected
        case .failure(let error): return .failure(ReportFailure(answer: .error(404, error.code, error.message)))
        }
        await self.flush()
        let evidence = await self.collector.collect(table: snapshot.table, routes: routes)
        do {
            return .success(
                try ReportBuilder.build(
                    table: snapshot.table, tableHash: snapshot.contentHash, routes: routes, evidence: evidence, store: self.diffStore, options: options,
                    source: source))
        } catch {
            return .failure(ReportFailure(answer: .error(500, "storage_failed", "the diff store could not be read: \(error)")))
        }
    }

    /// The report as the admin API's JSON answer (`GET /admin/report?format=json`).
    public func reportAnswer(_ options: ReportOptions, source: String) async -> ControlAnswer {
        switch await self.report(options, source: source) {
        case .success(let report): ControlAnswer(status: 200, body: report.json, etag: report.tableHash)
        case .failure(let failure): failure.answer
        }
    }
}
