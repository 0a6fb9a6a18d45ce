quit(save = "no", status = 3)
