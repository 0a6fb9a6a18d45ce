(doseq [arg *command-line-args*]
  (println arg))
