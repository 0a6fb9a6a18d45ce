-module(exit3).
-export([main/1]).

main(_Args) ->
    halt(3).
