# plot.gp: one clustered bar chart of the benchmark (one cluster per
# workload, one bar per engine). harness_report.c runs it once per
# workload group with these variables set by `gnuplot -e`:
#   datafile  whitespace table: header "workload eng1 eng2 ...", one row per
#             workload, "-" where an engine has no figure
#   outfile   the PNG to write
#   ttl, ylab title and y axis label
#   logy      1 for a logarithmic y axis
#   ncols     number of engine columns
set terminal pngcairo size 1200,520 font "sans,10"
set output outfile
set title ttl font "sans,12" noenhanced
set ylabel ylab
set datafile missing "-"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.9 border rgb "#333333"
set boxwidth 0.9
set grid ytics lc rgb "#dddddd"
set key outside right top vertical noenhanced
set xtics nomirror noenhanced rotate by -20 left
set ytics nomirror
set border 3
if (logy) { set logscale y; set format y "10^{%L}" } else { set yrange [0:*] }
# calypso (the first column) in a strong colour, peers in calmer ones.
array colors[10] = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b", \
                    "#17becf", "#7f7f7f", "#bcbd22", "#e377c2", "#ff7f0e"]
plot for [i=2:ncols+1] datafile using i:xtic(1) title columnheader(i) lc rgb colors[(i-2)%10+1]
