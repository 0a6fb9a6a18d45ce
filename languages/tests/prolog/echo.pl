:- initialization(main, main).

main :-
    copy_stream_data(user_input, user_output).
