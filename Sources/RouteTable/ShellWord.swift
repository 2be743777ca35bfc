/// A word as a POSIX shell reads it back: as it is when it holds only characters a shell takes literally, else in
/// single quotes. Hints the tools print (`strangler undo --admin …`) are commands that work as printed.
public enum ShellWord {
    public static func quote(_ word: String) -> String {
        let literal = "_./:=@%+-,"
        let plain =
            !word.isEmpty
            && word.unicodeScalars.allSatisfy { scalar in
                scalar.isASCII
                    && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar)
                        || literal.unicodeScalars.contains(scalar))
            }
        guard !plain else { return word }
        var quoted = "'"
        for character in word {
            quoted += character == "'" ? #"'\''"# : String(character)
        }
        return quoted + "'"
    }
}
