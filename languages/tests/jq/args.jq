$ARGS.positional[]
