extension RouteTable {
    /// Resolves every distinct upstream of the table once with `resolve` (the data plane connects to what this gives,
    /// and the control plane refuses a table that would not resolve before it writes anything). An upstream that does
    /// not resolve is a problem of the table named by its place (`$.monolith`, `$.services.leads`), like any other
    /// validation problem.
    ///
    /// ```swift
    /// let addresses = try table.resolvingUpstreams {
    ///     try SocketAddress.makeAddressResolvingHost($0.host, port: $0.port)
    /// }
    /// ```
    public func resolvingUpstreams<Address>(
        _ resolve: (Upstream) throws -> Address
    ) throws(RouteTableError) -> [Upstream: Address] {
        var addresses: [Upstream: Address] = [:]
        var problems: [RouteTableError.Problem] = []
        for (path, _, group) in self.namedGroups {
            for (index, upstream) in group.instances.enumerated() where addresses[upstream] == nil {
                let place = group.instances.count == 1 ? path : "\(path).instances[\(index)]"
                do {
                    addresses[upstream] = try resolve(upstream)
                } catch {
                    problems.append(
                        .init(
                            path: place,
                            reason: "host \"\(upstream.host)\" does not resolve (\(error)); nothing was changed"))
                }
            }
        }
        guard problems.isEmpty else { throw RouteTableError(problems: problems) }
        return addresses
    }

    /// The hash of a table's file text that names its version to writers (the admin API's ETag, the CLI's `If-Match`):
    /// FNV-1a, 64 bits, as 16 hex digits.
    public static func contentHash(of text: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        let digits = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
