main :- write('unterminated.
