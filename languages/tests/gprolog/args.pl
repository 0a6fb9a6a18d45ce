:- initialization(main).
main :- argument_list(Args), print_each(Args).
print_each([]).
print_each([A | As]) :- write(A), nl, print_each(As).
