print $*IN.slurp;
