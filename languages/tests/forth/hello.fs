: hello  ." Hello, World!" cr ;  hello bye
