-module(compile_error).
-export([main/1]).

main(_Args) ->
    io:format("~p~n", [Undefined]),
    missing_function().
