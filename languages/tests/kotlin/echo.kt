fun main() {
    val input = System.`in`
    val output = System.out
    val buffer = ByteArray(8192)
    while (true) {
        val n = input.read(buffer)
        if (n < 0) break
        output.write(buffer, 0, n)
    }
    output.flush()
}
