object Main {
  def main(args: Array[String]): Unit = {
    val buffer = new Array[Byte](8192)
    var n = System.in.read(buffer)
    while (n >= 0) {
      System.out.write(buffer, 0, n)
      n = System.in.read(buffer)
    }
    System.out.flush()
  }
}
