for arg in CommandLine.arguments.dropFirst() {
    print(arg)
}
