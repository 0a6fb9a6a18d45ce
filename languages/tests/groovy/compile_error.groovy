def greet(String name) {
    println "Hello, ${name}!"

greet("World"
