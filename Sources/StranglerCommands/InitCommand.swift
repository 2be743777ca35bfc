public import ArgumentParser
import ControlPlane
import Foundation
import JSON
import RouteTable
import Yams

/// `strangler init --openapi FILE --monolith URL [--out routes.json] [--force]`: a first route table from the
/// operations an application already describes.
public struct InitCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Write a first routes.json from an OpenAPI document: one route per operation, all in transform.",
        discussion: """
            Reads an OpenAPI 3 (or Swagger 2) document, YAML or JSON, and writes a route table with one route per \
            operation: its id is the operationId (characters routes.json does not take become '_'), else the \
            method and path as an id (GET /orders/{id} → get.orders.id); the path keeps the document's templates \
            ({id}), under the path of its first server URL (servers: [{url: /api}] → /api/orders); every route \
            starts in transform, so the monolith answers everything as before. --service NAME=URL declares an \
            extracted service, and every operation tagged NAME gets it (still in transform: moving is a gated \
            stage change). --no-probes declares the services and the monolith with no health, sync-lag or \
            reverse-sync probe and no entity (docs/routes.md): their gates read "not measured" until you declare \
            what the application has.

            The table is validated before it is written; nothing is written when the document has an operation \
            routes.json cannot hold (each is named), and an existing file is never overwritten without --force.

            Exit status: 0 written, 2 usage error, an unreadable or invalid document, or an existing file.

            Examples:
              strangler init --openapi openapi.yaml --monolith http://127.0.0.1:9001
              strangler init --openapi shop.json --monolith http://127.0.0.1:9001 --service orders=http://127.0.0.1:9002
            """
    )

    @Option(help: ArgumentHelp("The OpenAPI document (YAML or JSON).", valueName: "file"))
    public var openapi: String

    @Option(help: "The monolith's URL (http://host:port).")
    public var monolith: String

    @Option(
        help: ArgumentHelp(
            "An extracted service, NAME=URL (repeatable): operations tagged NAME take it.", valueName: "name=url"))
    public var service: [String] = []

    @Flag(help: "Declare the monolith and the services with no probes and no entities (not measured).")
    public var noProbes: Bool = false

    @Option(help: "Where to write the table.")
    public var out: String = "routes.json"

    @Flag(help: "Overwrite the file if it exists.")
    public var force: Bool = false

    public init() {}

    public func validate() throws {
        if case .failure(let error) = Upstream.parse(self.monolith) {
            throw ValidationError("--monolith \(self.monolith): \(error.reason)")
        }
        for entry in self.service {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, RouteTable.isIdentifier(parts[0]) else {
                throw ValidationError("--service \(entry): expected NAME=URL, such as orders=http://127.0.0.1:9002")
            }
            if case .failure(let error) = Upstream.parse(parts[1]) {
                throw ValidationError("--service \(entry): \(error.reason)")
            }
        }
    }

    public func run() throws {
        let text: String
        do {
            text = try self.table()
        } catch {
            FileHandle.standardError.write(Data("strangler init: \(error.description)\n".utf8))
            throw ExitCode(2)
        }
        if !self.force, FileManager.default.fileExists(atPath: self.out) {
            FileHandle.standardError.write(
                Data("strangler init: \(self.out) exists; pass --force to overwrite it, or --out another file\n".utf8))
            throw ExitCode(2)
        }
        do {
            try RouteFile.refuseLink(self.out)
            try AtomicFile.write(text, to: self.out)
        } catch {
            FileHandle.standardError.write(Data("strangler init: cannot write \(self.out): \(error)\n".utf8))
            throw ExitCode(2)
        }
        let table = try? RouteTable.parse(text)
        print("\(self.out): \(table?.routes.count ?? 0) routes from \(self.openapi), all in transform")
        print("next: strangler proxy --routes \(ShellWord.quote(self.out))")
    }

    /// The table's text, validated.
    func table() throws(Failure) -> String {
        let document = try OpenAPIDocument.read(self.openapi)
        let services = self.service.map { entry -> (name: String, url: String) in
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            return (parts[0], parts[1])
        }
        let routes = try document.routes(services: Set(services.map(\.name)))
        let none: JSONValue = .object([("health", .null), ("syncLag", .null), ("reverseSync", .null)])
        func upstream(_ url: String, monolith: Bool) -> JSONValue {
            guard self.noProbes else { return .string(url) }
            if monolith {
                return .object([
                    ("url", .string(url)),
                    ("probes", .object([("reverseSync", .null), ("events", .null)])),
                ])
            }
            return .object([("url", .string(url)), ("probes", none), ("entities", .object([]))])
        }
        var members: [(key: String, value: JSONValue)] = [("monolith", upstream(self.monolith, monolith: true))]
        members.append(
            ("services", .object(services.map { ($0.name, upstream($0.url, monolith: false)) })))
        members.append(("routes", .array(routes)))
        let value = JSONValue.object(members)
        let text = Self.format(value)
        do {
            _ = try RouteTable.parse(text)
        } catch {
            throw Failure("the table made from \(self.openapi) is invalid (nothing written):\n\(error)")
        }
        return text
    }

    /// One route per line, as the repository's own routes.json is written.
    static func format(_ table: JSONValue) -> String {
        var lines = ["{"]
        let members = table.objectValue ?? []
        for (index, member) in members.enumerated() {
            let comma = index == members.count - 1 ? "" : ","
            if member.key == "routes", let routes = member.value.arrayValue {
                lines.append("  \"routes\": [")
                for (offset, route) in routes.enumerated() {
                    lines.append("    " + route.jsonText + (offset == routes.count - 1 ? "" : ","))
                }
                lines.append("  ]" + comma)
            } else {
                lines.append("  \(JSONValue.string(member.key).jsonText): \(member.value.jsonText)\(comma)")
            }
        }
        lines.append("}")
        return lines.joined(separator: "\n") + "\n"
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }
}

/// What routes.json takes as a name.
enum RouteTableNames {
    /// `text` with every character routes.json does not take in an id as `_`.
    static func identifier(_ text: String) -> String {
        String(
            text.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "_" || $0 == "-") ? $0 : "_" })
    }

    /// `GET /orders/{id}/items` → `get.orders.id.items`.
    static func identifier(method: String, path: String) -> String {
        let segments = path.split(separator: "/").map { segment -> String in
            var text = String(segment)
            if text.hasPrefix("{"), text.hasSuffix("}") { text = String(text.dropFirst().dropLast()) }
            return Self.identifier(text)
        }
        return ([method.lowercased()] + segments).joined(separator: ".")
    }
}

/// An OpenAPI 3 or Swagger 2 document, as far as routing needs: its paths, operations, ids, tags and base path.
struct OpenAPIDocument {
    let value: JSONValue
    let file: String

    static let methods = ["get", "put", "post", "delete", "options", "head", "patch", "trace"]

    static func read(_ path: String) throws(InitCommand.Failure) -> OpenAPIDocument {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw .init("cannot read \(path): \(error.localizedDescription)")
        }
        let trimmed = text.drop { $0.isWhitespace }
        let value: JSONValue
        if trimmed.hasPrefix("{") {
            do {
                value = try JSONParser.parse(text)
            } catch {
                throw .init("\(path) is not valid JSON: \(error)")
            }
        } else {
            do {
                guard let node = try Yams.compose(yaml: text) else { throw InitCommand.Failure("\(path) is empty") }
                value = try Self.json(node, at: "$")
            } catch let failure as InitCommand.Failure {
                throw failure
            } catch {
                throw .init("\(path) is not valid YAML: \(error)")
            }
        }
        guard value.objectValue != nil else { throw .init("\(path): the document must be an object") }
        guard value["openapi"]?.stringValue != nil || value["swagger"]?.stringValue != nil else {
            throw .init("\(path): not an OpenAPI document (no \"openapi\" or \"swagger\" version)")
        }
        guard let paths = value["paths"], paths.objectValue != nil else {
            throw .init("\(path): $.paths is missing or not an object")
        }
        return OpenAPIDocument(value: value, file: path)
    }

    /// A YAML node as JSON: mappings keep their order; scalars by their resolved tag.
    static func json(_ node: Node, at path: String) throws(InitCommand.Failure) -> JSONValue {
        switch node {
        case .mapping(let mapping):
            var members: [(key: String, value: JSONValue)] = []
            for (key, value) in mapping {
                guard let name = key.string else {
                    throw .init("\(path): a key that is not a string (line \(key.mark?.line ?? 0))")
                }
                members.append((name, try self.json(value, at: "\(path).\(name)")))
            }
            return .object(members)
        case .sequence(let sequence):
            var items: [JSONValue] = []
            for (index, item) in sequence.enumerated() { items.append(try self.json(item, at: "\(path)[\(index)]")) }
            return .array(items)
        case .scalar:
            if node.null != nil { return .null }
            if let bool = node.bool { return .bool(bool) }
            if let int = node.int { return .number(Double(int)) }
            if let float = node.float { return .number(float) }
            return .string(node.string ?? "")
        case .alias:
            throw .init("\(path): YAML aliases are not read (line \(node.mark?.line ?? 0))")
        }
    }

    /// The path of the first server URL (OpenAPI 3 `servers`), or Swagger 2's `basePath`; "" for none.
    var basePath: String {
        var path = ""
        if let url = self.value["servers"]?.arrayValue?.first?["url"]?.stringValue {
            if let components = URLComponents(string: url), components.host != nil || url.hasPrefix("/") {
                path = components.path
            }
        } else if let base = self.value["basePath"]?.stringValue {
            path = base
        }
        while path.hasSuffix("/") { path.removeLast() }
        return path
    }

    /// Every operation as a route (transform), in the document's order; every problem named, or none written.
    func routes(services: Set<String>) throws(InitCommand.Failure) -> [JSONValue] {
        var routes: [JSONValue] = []
        var problems: [String] = []
        var ids: Set<String> = []
        let base = self.basePath
        for (template, item) in self.value["paths"]?.objectValue ?? [] {
            guard let operations = item.objectValue else {
                problems.append("$.paths['\(template)']: must be an object of operations")
                continue
            }
            let path = base + template
            if case .failure(let error) = PathTemplate.parse(path) {
                problems.append("$.paths['\(template)']: \"\(path)\" \(error.reason)")
                continue
            }
            for (key, operation) in operations where Self.methods.contains(key) {
                let place = "$.paths['\(template)'].\(key)"
                let method = key.uppercased()
                guard Route.methods.contains(method) else {
                    problems.append("\(place): \(method) is not a method routes.json routes")
                    continue
                }
                var id =
                    operation["operationId"]?.stringValue.map(RouteTableNames.identifier)
                    ?? RouteTableNames.identifier(method: method, path: path)
                if id.isEmpty || !RouteTable.isIdentifier(id) {
                    id = RouteTableNames.identifier(method: method, path: path)
                }
                var unique = id
                var suffix = 2
                while ids.contains(unique) {
                    unique = "\(id)-\(suffix)"
                    suffix += 1
                }
                ids.insert(unique)
                var members: [(key: String, value: JSONValue)] = [
                    ("id", .string(unique)), ("method", .string(method)), ("path", .string(path)),
                ]
                let tags = operation["tags"]?.arrayValue?.compactMap(\.stringValue) ?? []
                if let service = tags.first(where: { services.contains($0) }) {
                    members.append(("service", .string(service)))
                }
                members.append(("stage", .string("transform")))
                routes.append(.object(members))
            }
        }
        guard problems.isEmpty else {
            throw .init(
                "\(self.file) has operations routes.json cannot hold (nothing written):\n"
                    + problems.map { "  \($0)" }.joined(separator: "\n"))
        }
        guard !routes.isEmpty else { throw .init("\(self.file) has no operations under $.paths") }
        return routes
    }
}
