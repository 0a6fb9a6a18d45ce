args.each { println it }
