(os.exit 3)
