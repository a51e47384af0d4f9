package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// panel is one bar chart of the picture: for each figure (a group on the
// x axis), one bar per path, at the median.
type panel struct {
	title, yLabel string
	table         string
	figs, labels  []string // figure keys and their group labels
	paths         []string // path keys, one bar (and legend entry) each
}

// chartPanels are the main figures. Direct TCP is left out: it is several
// times faster than any proxy and would flatten the bars that compare
// the proxies (its figures are in the tables).
func chartPanels(r *report) []panel {
	proxies := []string{pathPlain, pathPorthole, pathTunnel, pathYamux, pathSmux}
	if r.Extra != "" {
		proxies = append(proxies, pathExtra)
	}
	return []panel{
		{"Loopback throughput (direct TCP: see the table)", "MB/s ↑", "loopback",
			[]string{"download_mbps", "upload_mbps", "parallel8_download_mbps", "parallel64_download_mbps"},
			[]string{"download", "upload", "8 streams", "64 streams"}, proxies},
		{"New connections per second", "conn/s ↑", "loopback",
			[]string{"seq_conn_per_sec", "conc_conn_per_sec"},
			[]string{"sequential", "32 workers"}, proxies},
		{"Latency on loopback", "ms ↓", "loopback",
			[]string{"seq_conn_p50_ms", "seq_conn_p99_ms", "hol_echo_p50_ms", "hol_echo_p99_ms"},
			[]string{"setup p50", "setup p99", "echo p50, bulk", "echo p99, bulk"}, proxies},
		{fmt.Sprintf("Single-stream download at %.0f ms RTT", r.RTTms), "MB/s ↑", "rtt",
			[]string{"rtt_download_mbps", "rtt_download_tail_mbps"},
			[]string{"first 6 s", "grown"}, []string{pathRTTAuto, pathRTTFixed, pathRTTYamux, pathRTTSmux}},
	}
}

// pathColor gives each path the same color in every panel (the tunnel's
// auto-tuned column of the round-trip table is the tunnel's color).
var pathColor = map[string]int{
	pathPorthole: 0, pathTunnel: 1, pathYamux: 2, pathSmux: 3, pathExtra: 4, pathPlain: 6,
	pathRTTAuto: 1, pathRTTFixed: 5, pathRTTYamux: 2, pathRTTSmux: 3,
}

// legendRoom is the headroom above the highest bar, for the legend.
const legendRoom = 1.35

// writeChart draws the panels two by two into dir/report.png.
func writeChart(r *report, dir string) error {
	panels := chartPanels(r)
	const cols = 2
	var grid [][]*plot.Plot
	for i, pn := range panels {
		p, err := r.barPlot(pn)
		if err != nil {
			return err
		}
		if i%cols == 0 {
			grid = append(grid, nil)
		}
		grid[len(grid)-1] = append(grid[len(grid)-1], p)
	}
	for len(grid[len(grid)-1]) < cols {
		grid[len(grid)-1] = append(grid[len(grid)-1], nil)
	}
	img := vgimg.NewWith(vgimg.UseWH(16*vg.Inch, 10*vg.Inch), vgimg.UseDPI(96))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: len(grid), Cols: cols, PadX: vg.Inch / 3, PadY: vg.Inch / 3,
		PadTop: vg.Inch / 6, PadBottom: vg.Inch / 6, PadLeft: vg.Inch / 6, PadRight: vg.Inch / 6}
	canvases := plot.Align(grid, tiles, dc)
	for i, row := range grid {
		for j, p := range row {
			if p != nil {
				p.Draw(canvases[i][j])
			}
		}
	}
	f, err := os.Create(filepath.Join(dir, "report.png"))
	if err != nil {
		return err
	}
	_, err = vgimg.PngCanvas{Canvas: img}.WriteTo(f)
	return errors.Join(err, f.Close())
}

// barPlot is one panel: grouped bars, missing values drawn as zero.
func (r *report) barPlot(pn panel) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = pn.title
	p.Y.Label.Text = pn.yLabel
	p.Y.Min = 0
	p.Legend.Top = true
	names := r.pathNames(pn.table)
	width := vg.Points(60 / float64(len(pn.paths)))
	highest := 0.0
	for i, pk := range pn.paths {
		vals := make(plotter.Values, len(pn.figs))
		for k, fk := range pn.figs {
			vals[k], _ = r.median(pn.table, fk, pk)
			highest = max(highest, vals[k])
		}
		bars, err := plotter.NewBarChart(vals, width)
		if err != nil {
			return nil, fmt.Errorf("chart %q: %w", pn.title, err)
		}
		bars.LineStyle.Width = 0
		bars.Color = plotutil.Color(pathColor[pk])
		bars.Offset = width * vg.Length(float64(i)-float64(len(pn.paths)-1)/2)
		p.Add(bars)
		p.Legend.Add(names[pk], bars)
	}
	p.NominalX(pn.labels...)
	if highest > 0 {
		p.Y.Max = highest * legendRoom
	}
	return p, nil
}

// pathNames maps a table's path keys to their column names.
func (r *report) pathNames(tableKey string) map[string]string {
	m := map[string]string{}
	for _, t := range r.Tables {
		if t.Key == tableKey {
			for _, p := range t.Paths {
				m[p.Key] = p.Name
			}
		}
	}
	return m
}
