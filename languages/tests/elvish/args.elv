for arg $args { echo $arg }
