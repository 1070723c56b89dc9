#!/usr/bin/perl
# Turns a CUDA source (the .cu files of kernels/cuda) into C++ for the CPU
# emulation (backends/gpuemu), rewriting what a C++ compiler cannot parse
# and the emulation headers cannot define as macros:
#
#   kernel<<<grid, block, shared, stream>>>(args)
#     -> egrc_emu::configure(kernel, "kernel", __FILE__, __LINE__, __PRETTY_FUNCTION__,
#                            grid, block, shared, stream)(args)
#   extern __shared__ T name[];
#     -> T *const name = egrc_emu::dynamic_shared<T>();
#   __shared__ T a[N], b;
#     -> static T a[N], b; egrc_emu::shared_variables(a, b);
#
# A static variable is shared by a block's fibers; the runtime fills it with
# NaN bytes when the block's first thread declares it, and checks its size.
# (Not a section attribute on the macro __shared__: GCC ignores those on the
# static locals of templates.)
#
# Usage: rewrite_launches.pl SOURCE OUTPUT. Lines keep their numbers, and a
# #line directive names SOURCE, so diagnostics and the emulator's messages
# point into the original file. A launch or __shared__ left over (one this
# script does not understand) fails the build.
use strict;
use warnings;

die "usage: $0 SOURCE OUTPUT\n" unless @ARGV == 2;
my ($source, $output) = @ARGV;
open(my $in, '<', $source) or die "$source: $!\n";
my $text = do { local $/; <$in> };
close($in);

# One launch, with as many newlines as the original.
sub launch {
    my ($kernel, $space, $config) = @_;
    (my $name = $kernel) =~ s/\s+/ /g;
    my $newlines = () = ($kernel . $space) =~ /\n/g;
    return "egrc_emu::configure($kernel, \"$name\", __FILE__, __LINE__, __PRETTY_FUNCTION__, $config)"
        . ("\n" x $newlines);
}

# One static __shared__ declaration: the names are the last identifier of
# each declarator once its array bounds are dropped.
sub shared {
    my ($declaration) = @_;
    my @names;
    (my $bare = $declaration) =~ s/\[[^\]]*\]//g;
    for my $declarator (split /,/, $bare) {
        $declarator =~ /([A-Za-z_]\w*)\s*$/ or die "$source: cannot parse __shared__ $declaration\n";
        push @names, $1;
    }
    return "static $declaration; egrc_emu::shared_variables(" . join(', ', @names) . ');';
}

# A kernel is a name, optionally qualified and with template arguments
# (which contain no angle brackets or parentheses of their own).
$text =~ s{([A-Za-z_][\w:]*(?:<[^<>;{}()]*>)?)(\s*)<<<(.*?)>>>}{launch($1, $2, $3)}gse;
$text =~ s{extern\s+__shared__\s+([A-Za-z_][\w\s]*?)\s+([A-Za-z_]\w*)\s*\[\s*\]\s*;}
          {$1 *const $2 = egrc_emu::dynamic_shared<$1>();}g;
$text =~ s{\b__shared__\s+([^;{}()]*?)\s*;}{shared($1)}ge;
die "$source: a kernel launch the rewrite does not understand is left\n" if $text =~ /<<<|>>>/;
die "$source: a __shared__ declaration the rewrite does not understand is left\n" if $text =~ /\b__shared__\b/;

open(my $out, '>', $output) or die "$output: $!\n";
print $out "#line 1 \"$source\"\n", $text;
close($out) or die "$output: $!\n";
