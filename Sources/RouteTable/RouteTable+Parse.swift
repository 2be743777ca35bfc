public import JSON

/// Why a routes.json is refused: every problem, each with the JSON path it is at.
///
/// ```
/// routes.json is invalid:
///   $.routes[2].stage: unknown stage "coexit" (expected transform, coexist or eliminate)
///   $.routes[4].service: service "billing" is not declared in $.services
/// ```
public struct RouteTableError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Problem: Sendable, Equatable, CustomStringConvertible {
        /// `$.routes[2].stage`
        public var path: String
        public var reason: String
        public var description: String { "\(self.path): \(self.reason)" }

        public init(path: String, reason: String) {
            self.path = path
            self.reason = reason
        }
    }

    public var problems: [Problem]

    public init(problems: [Problem]) {
        self.problems = problems
    }

    public var description: String {
        "routes table is invalid:\n" + self.problems.map { "  \($0)" }.joined(separator: "\n")
    }
}

extension RouteTable {
    static let topLevelKeys: Set<String> = [
        "monolith", "services", "routes", "gates", "paths", "schema", "redact", "retention", "limits", "clients", "jwt",
        "enforce",
    ]
    static let routeKeys: Set<String> = Set([
        "id", "method", "path", "service", "stage", "timeout", "shadow", "limits", "allow", "deny", "enforce",
    ]).union(LimitPolicy.throttleKeys)

    /// Parses and validates routes.json text.
    public static func parse(_ bytes: [UInt8]) throws(RouteTableError) -> RouteTable {
        let document: JSONValue
        do {
            document = try JSONParser.parse(bytes)
        } catch {
            throw RouteTableError(problems: [.init(path: "$", reason: "not valid JSON: \(error)")])
        }
        return try self.validate(document)
    }

    public static func parse(_ text: String) throws(RouteTableError) -> RouteTable {
        try self.parse(Array(text.utf8))
    }

    /// Validates a parsed document, collecting every problem.
    public static func validate(_ document: JSONValue) throws(RouteTableError) -> RouteTable {
        var problems: [RouteTableError.Problem] = []
        func problem(_ path: String, _ reason: String) { problems.append(.init(path: path, reason: reason)) }

        guard let members = document.objectValue else {
            throw RouteTableError(problems: [.init(path: "$", reason: "must be an object, not \(document.typeName)")])
        }
        for member in members where !Self.topLevelKeys.contains(member.key) {
            problem(
                "$.\(member.key)",
                "unknown key (expected one of: \(Self.topLevelKeys.sorted().joined(separator: ", ")))")
        }
        if let schema = document["schema"], schema != .number(1) {
            problem("$.schema", "unsupported schema \(schema.jsonText) (this version reads schema 1)")
        }

        var monolith: ServiceDeclaration?
        if let value = document["monolith"] {
            monolith = Self.parseUpstream(value, path: "$.monolith", service: nil, problem: problem)
        } else {
            problem("$.monolith", "is required (the monolith's URL, such as \"http://127.0.0.1:8081\")")
        }

        var services: [String: ServiceDeclaration] = [:]
        switch document["services"] {
        case .none: break
        case .some(.object(let entries)):
            var entityOwners: [String: String] = [:]
            for (name, value) in entries {
                let path = "$.services.\(name)"
                guard Self.isIdentifier(name) else {
                    problem(path, "service names use letters, digits, '.', '_' and '-'")
                    continue
                }
                guard let declaration = Self.parseUpstream(value, path: path, service: name, problem: problem) else {
                    continue
                }
                for entity in declaration.entities {
                    if let owner = entityOwners[entity.name] {
                        problem(
                            "\(path).entities.\(entity.name)",
                            "entity \"\(entity.name)\" is already declared by $.services.\(owner)")
                    }
                    entityOwners[entity.name] = name
                }
                services[name] = declaration
            }
        case .some(let other):
            problem("$.services", "must be an object of name → URL or {\"url\", …}, not \(other.typeName)")
        }
        let declared = Set(document["services"]?.objectValue?.map(\.key) ?? [])
        let clients = document["clients"].map { ClientRegistry.parse($0, services: declared, problem: problem) }
        let jwt = document["jwt"].flatMap { JWTPolicy.parse($0, problem: problem) }

        var routes: [Route] = []
        var ids: [String: Int] = [:]
        var shapes: [String: Int] = [:]
        switch document["routes"] {
        case .none: problem("$.routes", "is required (an array of routes)")
        case .some(.array(let items)):
            for (index, item) in items.enumerated() {
                let base = "$.routes[\(index)]"
                guard let fields = item.objectValue else {
                    problem(base, "must be an object, not \(item.typeName)")
                    continue
                }
                for field in fields where !Self.routeKeys.contains(field.key) {
                    problem(
                        "\(base).\(field.key)",
                        "unknown key (expected one of: \(Self.routeKeys.sorted().joined(separator: ", ")))")
                }
                func string(_ key: String, required: Bool) -> String? {
                    switch item[key] {
                    case .none:
                        if required { problem("\(base).\(key)", "is required") }
                        return nil
                    case .some(.string(let text)): return text
                    case .some(let other):
                        problem("\(base).\(key)", "must be a string, not \(other.typeName)")
                        return nil
                    }
                }
                let id = string("id", required: true)
                if let id {
                    if !Self.isIdentifier(id) {
                        problem("\(base).id", "\"\(id)\" is not an id (letters, digits, '.', '_' and '-')")
                    } else if let first = ids[id] {
                        problem("\(base).id", "duplicate id \"\(id)\" (also $.routes[\(first)])")
                    } else {
                        ids[id] = index
                    }
                }
                let method = string("method", required: true)
                if let method, !Route.methods.contains(method) {
                    problem(
                        "\(base).method",
                        "unknown method \"\(method)\" (expected one of: "
                            + "\(Route.methods.sorted().joined(separator: ", ")))"
                    )
                }
                var template: PathTemplate?
                if let path = string("path", required: true) {
                    switch PathTemplate.parse(path) {
                    case .success(let parsed): template = parsed
                    case .failure(let error): problem("\(base).path", "\"\(path)\" \(error.reason)")
                    }
                }
                let service = string("service", required: false)
                if let service, !declared.contains(service) {
                    problem("\(base).service", "service \"\(service)\" is not declared in $.services")
                }
                var stage: Stage?
                if let text = string("stage", required: true) {
                    stage = Stage(rawValue: text)
                    if stage == nil {
                        problem("\(base).stage", "unknown stage \"\(text)\" (expected transform, coexist or eliminate)")
                    }
                }
                if let stage, stage != .transform, item["service"] == nil {
                    problem("\(base).stage", "stage \(stage.rawValue) needs a \"service\" to send requests to")
                }
                var timeout = Route.defaultTimeout
                if let text = string("timeout", required: false) {
                    if let duration = DurationText.parse(text), duration > .zero {
                        timeout = duration
                    } else {
                        problem("\(base).timeout", "\"\(text)\" is not a duration such as \"30s\" or \"500ms\"")
                    }
                }
                var shadow: ShadowPolicy?
                if let value = item["shadow"] {
                    shadow = Self.parseShadow(value, path: "\(base).shadow", template: template, problem: problem)
                }
                let limits = LimitPolicy.parse(item["limits"], object: item, path: base, problem: problem)
                let access = AccessRule.parse(
                    item, path: base, clients: clients ?? ClientRegistry(), services: declared,
                    anyName: document["jwt"] != nil, problem: problem)
                if let method, let template {
                    let shape = "\(method) \(template.shape)"
                    if let first = shapes[shape] {
                        problem("\(base).path", "\(method) \(template) is already routed by $.routes[\(first)]")
                    } else {
                        shapes[shape] = index
                    }
                }
                if let id, let method, let template, let stage, Route.methods.contains(method) {
                    routes.append(
                        Route(
                            id: id, method: method, path: template, service: service, stage: stage, timeout: timeout,
                            shadow: shadow, limits: limits, access: access))
                }
            }
        case .some(let other): problem("$.routes", "must be an array, not \(other.typeName)")
        }

        let gates = document["gates"].map { GatePolicy.parse($0, path: "$.gates", problem: problem) } ?? .defaults
        let privacy = PrivacyPolicy.parse(
            redact: document["redact"], retention: document["retention"], problem: problem)

        var paths = PathMode.normalize
        if let value = document["paths"] {
            if let text = value.stringValue, let mode = PathMode(rawValue: text) {
                paths = mode
            } else {
                problem("$.paths", "must be \"normalize\" (the default) or \"strict\", not \(value.jsonText)")
            }
        }

        let limits = document["limits"].flatMap {
            LimitPolicy.parse($0, object: nil, path: "$", problem: problem)
        }
        for key in LimitPolicy.throttleKeys.sorted() where document["limits"]?[key] != nil {
            problem("$.limits.\(key)", "is a route's or a service's (the table has the connection cap instead)")
        }
        var enforce = true
        if let value = document["enforce"] {
            if let flag = value.boolValue { enforce = flag } else { problem("$.enforce", "must be true or false") }
        }

        guard problems.isEmpty, let monolith else { throw RouteTableError(problems: problems) }
        return RouteTable(
            monolith: monolith.upstream, services: services.mapValues(\.upstream), routes: routes, gates: gates,
            privacy: privacy, paths: paths, document: document, monolithProbes: monolith.probes, declarations: services,
            monolithGroup: monolith.group,
            gateway: GatewayPolicy(limits: limits, clients: clients ?? ClientRegistry(), jwt: jwt, enforce: enforce))
    }

    /// Whether `text` is a name routes.json takes (route ids, services, entities): letters, digits, `.`, `_`, `-`.
    public static func isIdentifier(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 128
            && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "_" || $0 == "-") }
    }

    /// A route's `shadow.redact`: pointers (starting with `/`, or `""` for the whole body) and field names (anything
    /// else), in that order.
    static func redactRules(
        _ value: JSONValue?, path: String, problem: (String, String) -> Void
    ) -> (pointers: [String], fields: [String]) {
        guard let value else { return ([], []) }
        guard let list = value.arrayValue, list.allSatisfy({ $0.stringValue != nil }) else {
            problem(path, "must be an array of JSON pointers such as \"/email\" or field names such as \"email\"")
            return ([], [])
        }
        let texts = list.compactMap(\.stringValue)
        return (texts.filter { $0.isEmpty || $0.hasPrefix("/") }, texts.filter { !$0.isEmpty && !$0.hasPrefix("/") })
    }

    static func parseShadow(
        _ value: JSONValue, path base: String, template: PathTemplate?, problem: (String, String) -> Void
    ) -> ShadowPolicy? {
        guard let members = value.objectValue else {
            problem(base, "must be an object, not \(value.typeName)")
            return nil
        }
        var policy = ShadowPolicy()
        for member in members where !ShadowPolicy.keys.contains(member.key) {
            problem(
                "\(base).\(member.key)",
                "unknown key (expected one of: \(ShadowPolicy.keys.sorted().joined(separator: ", ")))")
        }
        func share(_ key: String) -> Double? {
            guard let item = value[key] else { return nil }
            guard let number = item.numberValue, (0...1).contains(number) else {
                problem("\(base).\(key)", "must be a number from 0.0 to 1.0")
                return nil
            }
            return number
        }
        func pointers(_ key: String) -> [String] {
            guard let item = value[key] else { return [] }
            guard let list = item.arrayValue, list.allSatisfy({ $0.stringValue != nil }) else {
                problem("\(base).\(key)", "must be an array of JSON pointers such as \"/updatedAt\"")
                return []
            }
            let texts = list.compactMap(\.stringValue)
            for (index, text) in texts.enumerated() where !(text.isEmpty || text.hasPrefix("/")) {
                problem("\(base).\(key)[\(index)]", "\"\(text)\" is not a JSON pointer (it must start with '/')")
            }
            return texts
        }
        if let sample = share("sample") { policy.sample = sample }
        if let serve = share("serve") { policy.serve = serve }
        if let item = value["sampleBy"] {
            if let text = item.stringValue, text.hasPrefix("header:"), text.count > "header:".count {
                policy.sampleBy = .header(String(text.dropFirst("header:".count)))
            } else if let text = item.stringValue, text.hasPrefix("{"), text.hasSuffix("}"), text.count > 2 {
                let name = String(text.dropFirst().dropLast())
                let parameters = template?.segments.compactMap { segment -> String? in
                    if case .parameter(let parameter) = segment { return parameter } else { return nil }
                }
                if let parameters, !parameters.contains(name) {
                    problem("\(base).sampleBy", "the route's path has no parameter {\(name)}")
                }
                policy.sampleBy = .pathParameter(name)
            } else {
                problem("\(base).sampleBy", "must be \"{param}\" (a path parameter) or \"header:Name\"")
            }
        }
        if let item = value["writes"] {
            if let text = item.stringValue, let writes = ShadowPolicy.Writes(rawValue: text) {
                policy.writes = writes
            } else {
                problem("\(base).writes", "must be \"skip\" or \"dry-run\"")
            }
        }
        if let item = value["timeout"] {
            if let text = item.stringValue, let duration = DurationText.parse(text), duration > .zero {
                policy.timeout = duration
            } else {
                problem("\(base).timeout", "must be a duration such as \"2s\" or \"500ms\"")
            }
        }
        policy.ignore = pointers("ignore")
        (policy.redact, policy.redactFields) = Self.redactRules(
            value["redact"], path: "\(base).redact", problem: problem)
        if value["version"] != nil { policy.version = pointers("version") }
        if let item = value["arrays"] {
            if let entries = item.objectValue, entries.allSatisfy({ $0.value.stringValue?.isEmpty == false }) {
                for entry in entries {
                    if !(entry.key.isEmpty || entry.key.hasPrefix("/")) {
                        problem(
                            "\(base).arrays.\(entry.key)",
                            "\"\(entry.key)\" is not a JSON pointer (it must start with '/')")
                    }
                    policy.arrays[entry.key] = entry.value.stringValue
                }
            } else {
                problem("\(base).arrays", "must be an object of pointer → key field, such as { \"/items\": \"id\" }")
            }
        }
        return policy
    }
}
