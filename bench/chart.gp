# bench/chart.gp: the chart of `make bench` (bench/run.sh passes datafile,
# outfile, charttitle, machine, nratio = the number of ratio columns).
# Top: each row's IOPS as a fraction of `direct`, same workload, same run,
# with the goals of issue 6 as dashed lines. Bottom: MiB/s on a log scale,
# with the copy limit (memcpy).
set terminal pngcairo size 1200,900 font "DejaVu Sans,10" noenhanced
set output outfile
set datafile separator "\t"
set style data histograms
set style histogram clustered gap 1.5
set style fill solid 0.85 border -1
set boxwidth 0.9
set key outside right top vertical
set grid ytics
set xtics rotate by 20 right scale 0
ncol = system("head -n 1 '".datafile."' | awk -F'\t' '{print NF}'") + 0
set multiplot layout 2,1 title charttitle."\n".machine font ",11"
set ylabel "IOPS / IOPS of direct"
set yrange [0:1.3]
set arrow 1 from graph 0, first 0.9 to graph 1, first 0.9 nohead dt 2 lc rgb "#444444"
set arrow 2 from graph 0, first 0.6 to graph 1, first 0.6 nohead dt 3 lc rgb "#444444"
set arrow 3 from graph 0, first 0.5 to graph 1, first 0.5 nohead dt 4 lc rgb "#444444"
set label 1 "goals: pool 0.9 (seq), bounce 0.6, grant 0.5 (64k)" at graph 0.01, graph 0.97 font ",9"
plot for [c=2:nratio+1] datafile using c:xtic(1) title columnhead(c)
unset arrow 1
unset arrow 2
unset arrow 3
unset label 1
set ylabel "MiB/s (log scale)"
set logscale y
set yrange [10:*]
plot for [c=nratio+2:ncol] datafile using c:xtic(1) title columnhead(c)
unset multiplot
