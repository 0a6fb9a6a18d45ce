#lang racket/base

(for ([arg (in-vector (current-command-line-arguments))])
  (displayln arg))
