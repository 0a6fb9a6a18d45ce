for argument in CommandLine.arguments.dropFirst() {
    print(argument)
}
