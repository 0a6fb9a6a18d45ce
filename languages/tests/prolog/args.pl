:- initialization(main, main).

main :-
    current_prolog_flag(argv, Argv),
    forall(member(Arg, Argv), (write(Arg), nl)).
