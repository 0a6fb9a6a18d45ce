"Hello, World!"
