use strict;
use warnings;

exit 3;
