public import ControlPlane
import DiffStore
import Foundation
import JSON
import RouteTable

extension RouteOperations {
    /// The report of the routes `options.selector` names, with the evidence the gates judge (collected as for
    /// `GET /admin/evidence`: the diff store since each route's last stage change, the services' health and sync,
    /// reconcile records, reverse sync). What `GET /admin/report` serves and `strangler report` renders.
    ///
    /// ```swift
    /// let report = try await operations.report(ReportOptions(selector: "contacts.get"), source: "routes.json")
    /// report.routes[0].verdict.text   // "not ready to eliminate"
    /// ```
    public func report(_ options: ReportOptions, source: String) async throws(ControlError) -> Report {
        let snapshot = self.control.table.liveTable
        let routes: [Route]
        switch ReportBuilder.select(options.selector, in: snapshot.table) {
        case .success(let selected): routes = selected
        case .failure(let error): throw ControlError(.init(error.code), error.message)
        }
        await self.flush()
        let evidence = await self.collector.collect(table: snapshot.table, routes: routes)
        do {
            // With a shared store, every proxy's diffs (the gates' evidence is every proxy's too).
            return try await ReportBuilder.build(
                table: snapshot.table, tableHash: snapshot.contentHash, routes: routes, evidence: evidence,
                store: self.evidence, options: options, source: source)
        } catch {
            throw ControlError(.storageFailed, "the diff store could not be read: \(error)")
        }
    }
}
