-module(echo).
-export([main/1]).

%% Copies standard input to standard output byte for byte: binaries, no decoding.
main(_Args) ->
    ok = io:setopts(standard_io, [binary, {encoding, latin1}]),
    copy().

copy() ->
    case io:get_line(standard_io, "") of
        eof -> ok;
        Line -> ok = io:put_chars(standard_io, Line), copy()
    end.
