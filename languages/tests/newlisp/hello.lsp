(println "Hello, World!")
(exit)
