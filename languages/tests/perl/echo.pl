use strict;
use warnings;

while (my $line = <STDIN>) {
    print $line;
}
