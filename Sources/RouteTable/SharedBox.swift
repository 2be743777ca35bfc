/// An immutable value in one shared box: a struct that holds its fields in one costs one reference count to copy,
/// however many strings and arrays they are (the proxy copies routes and upstreams on every request).
final class SharedBox<Value: Sendable>: Sendable {
    let value: Value

    init(_ value: Value) {
        self.value = value
    }
}
