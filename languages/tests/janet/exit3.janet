(os/exit 3)
