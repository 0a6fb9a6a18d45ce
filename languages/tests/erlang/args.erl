-module(args).
-export([main/1]).

main(Args) ->
    lists:foreach(fun(Arg) -> io:format("~ts~n", [Arg]) end, Args).
