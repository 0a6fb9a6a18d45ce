// Copies standard input to standard output byte for byte (readLine would drop
// the last line's missing newline).
import Foundation

let input = FileHandle.standardInput.readDataToEndOfFile()
FileHandle.standardOutput.write(input)
