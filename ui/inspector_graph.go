package ui

import (
	"image"
	"image/color"
	"image/draw"
	"math"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// Colours of the two series, legible on the light and the dark theme.
var (
	upColor   = color.NRGBA{R: 0xf0, G: 0x8c, B: 0x1a, A: 0xff} // orange
	downColor = color.NRGBA{R: 0x2a, G: 0x8a, B: 0xe8, A: 0xff} // blue
)

// trafficGraph draws the registry-wide up and down rates of the last
// graphSpan as two lines on a canvas.Raster: one image per redraw instead
// of hundreds of line objects, and the painter scales it to the screen.
// Samples exist only while the window is shown (a hidden inspector does no
// work), so until there are graphSpan of them the time axis covers what
// there is, at least graphMinSpan.
//
// Concurrency: Fyne thread only (the raster's generate func runs there).
type trafficGraph struct {
	widget.BaseWidget
	samples []rateSample
	now     time.Time
	raster  *canvas.Raster
	span    time.Duration // of the time axis
	scale   *widget.Label
	legend  *fyne.Container
}

// graphMinSpan is the shortest time axis, so a window just opened does not
// stretch two samples across the whole width.
const graphMinSpan = 20 * time.Second

func newTrafficGraph() *trafficGraph {
	g := &trafficGraph{}
	g.raster = canvas.NewRaster(g.draw)
	g.raster.SetMinSize(fyne.NewSize(300, 90))
	g.scale = widget.NewLabel("")
	g.scale.TextStyle.Monospace = true
	g.scale.SizeName = theme.SizeNameCaptionText
	g.legend = container.NewHBox(
		// Arrow last: a canvas.Text with a space after a glyph from
		// the fallback font draws a replacement box (Fyne 2.8.1).
		legendItem("up ↑", upColor), legendItem("down ↓", downColor),
		layout.NewSpacer(), g.scale,
	)
	g.ExtendBaseWidget(g)
	return g
}

func legendItem(text string, c color.Color) fyne.CanvasObject {
	t := canvas.NewText(text, c)
	t.TextSize = theme.CaptionTextSize()
	return t
}

// show replaces the samples; now is the right edge of the graph.
func (g *trafficGraph) show(samples []rateSample, now time.Time) {
	g.samples, g.now = samples, now
	g.span = graphMinSpan
	if len(samples) > 0 {
		g.span = min(max(now.Sub(samples[0].at), graphMinSpan), graphSpan)
	}
	g.scale.SetText("max " + formatRate(g.peak()) + " · last " + formatDuration(g.span.Round(time.Second)))
	g.raster.Refresh()
}

func (g *trafficGraph) CreateRenderer() fyne.WidgetRenderer {
	return widget.NewSimpleRenderer(container.NewBorder(g.legend, nil, nil, nil, g.raster))
}

// peak is the top of the scale: the largest rate shown, at least 1 kB/s so
// an idle proxy draws flat lines at the bottom instead of noise.
func (g *trafficGraph) peak() float64 {
	top := 1000.0
	for _, s := range g.samples {
		top = math.Max(top, math.Max(s.up, s.down))
	}
	return top
}

func (g *trafficGraph) draw(w, h int) image.Image {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	if w < 2 || h < 2 {
		return img
	}
	bg := color.NRGBA{R: 0x80, G: 0x80, B: 0x80, A: 0x18}
	draw.Draw(img, img.Bounds(), &image.Uniform{C: bg}, image.Point{}, draw.Src)
	grid := color.NRGBA{R: 0x80, G: 0x80, B: 0x80, A: 0x50}
	for i := 1; i < 4; i++ { // quarters of the time axis
		x := w * i / 4
		for y := range h {
			img.Set(x, y, grid)
		}
	}
	if len(g.samples) == 0 {
		return img
	}
	top := g.peak()
	span := max(g.span, time.Second)
	start := g.now.Add(-span)
	point := func(s rateSample, v float64) (float64, float64) {
		x := float64(s.at.Sub(start)) / float64(span) * float64(w-1)
		y := float64(h-2) - v/top*float64(h-3)
		return x, y
	}
	for _, series := range []struct {
		c   color.NRGBA
		val func(rateSample) float64
	}{
		{downColor, func(s rateSample) float64 { return s.down }},
		{upColor, func(s rateSample) float64 { return s.up }},
	} {
		px, py := point(g.samples[0], series.val(g.samples[0]))
		plot(img, px, py, series.c)
		for _, s := range g.samples[1:] {
			x, y := point(s, series.val(s))
			line(img, px, py, x, y, series.c)
			px, py = x, y
		}
	}
	return img
}

// line draws a two-pixel-thick segment; the steps are bounded by the
// segment's length in pixels.
func line(img *image.NRGBA, x0, y0, x1, y1 float64, c color.NRGBA) {
	steps := int(math.Ceil(math.Max(math.Abs(x1-x0), math.Abs(y1-y0))))
	if steps < 1 {
		steps = 1
	}
	if limit := img.Rect.Dx() + img.Rect.Dy(); steps > limit {
		steps = limit
	}
	for i := 0; i <= steps; i++ {
		t := float64(i) / float64(steps)
		plot(img, x0+(x1-x0)*t, y0+(y1-y0)*t, c)
	}
}

func plot(img *image.NRGBA, x, y float64, c color.NRGBA) {
	ix, iy := int(math.Round(x)), int(math.Round(y))
	for dy := 0; dy < 2; dy++ {
		for dx := 0; dx < 2; dx++ {
			if (image.Point{X: ix + dx, Y: iy + dy}).In(img.Rect) {
				img.SetNRGBA(ix+dx, iy+dy, c)
			}
		}
	}
}
