package ui

import (
	"image"
	"image/color"
	"image/draw"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/driver/software"
	"fyne.io/fyne/v2/test"
)

// renderIcon draws res at size×size pixels the way Fyne's tray does (the
// software painter), over a transparent background.
func renderIcon(res fyne.Resource, size int) image.Image {
	c := software.NewTransparentCanvas()
	c.SetPadded(false)
	c.SetContent(canvas.NewImageFromResource(res))
	c.Resize(fyne.NewSquareSize(float32(size)))
	return c.Capture()
}

// onPanel lays icon over a panel of colour bg.
func onPanel(icon image.Image, bg color.Color) *image.RGBA {
	out := image.NewRGBA(icon.Bounds())
	draw.Draw(out, out.Bounds(), image.NewUniform(bg), image.Point{}, draw.Src)
	draw.Draw(out, out.Bounds(), icon, icon.Bounds().Min, draw.Over)
	return out
}

func luminance(c color.Color) float64 {
	r, g, b, _ := c.RGBA()
	return (0.2126*float64(r) + 0.7152*float64(g) + 0.0722*float64(b)) / 0xffff
}

// TestTrayIconsLegibleAtSixteenPixels checks the four state icons at the
// smallest tray size on a light and a dark panel: each covers enough of
// its square with colours that stand out from the panel, and any two
// differ in a good share of their pixels. A preview of every size on both
// panels goes to the temporary directory, or to
// docs/screenshots/tray-icons.png with PORTHOLE_UPDATE_SCREENSHOTS=1.
func TestTrayIconsLegibleAtSixteenPixels(t *testing.T) {
	test.NewTempApp(t)
	icons := []fyne.Resource{iconOff, iconDirect, iconTunnel, iconError}
	panels := map[string]color.Color{"light": color.White, "dark": color.RGBA{0x20, 0x22, 0x25, 0xff}}
	const size = 16
	for name, bg := range panels {
		var drawn []*image.RGBA
		for _, res := range icons {
			img := onPanel(renderIcon(res, size), bg)
			standOut := 0
			for y := range size {
				for x := range size {
					d := luminance(img.At(x, y)) - luminance(bg)
					if d > 0.25 || d < -0.25 {
						standOut++
					}
				}
			}
			if share := float64(standOut) / (size * size); share < 0.30 {
				t.Errorf("%s on a %s panel: %.0f%% of its pixels stand out, want at least 30%%", res.Name(), name, share*100)
			}
			drawn = append(drawn, img)
		}
		for i := range drawn {
			for j := i + 1; j < len(drawn); j++ {
				if share := differing(drawn[i], drawn[j]); share < 0.15 {
					t.Errorf("on a %s panel %s and %s differ in %.0f%% of their pixels, want 15%%",
						name, icons[i].Name(), icons[j].Name(), share*100)
				}
			}
		}
	}

	// The preview: sizes 16, 24, 32 and 48 across, light and dark rows.
	sizes := []int{16, 24, 32, 48}
	const pad = 8
	width, height := pad, 2*(48+2*pad)
	for _, s := range sizes {
		width += len(icons)*(s+pad) + pad
	}
	sheet := image.NewRGBA(image.Rect(0, 0, width, height))
	for row, bg := range []color.Color{panels["light"], panels["dark"]} {
		top := row * (48 + 2*pad)
		draw.Draw(sheet, image.Rect(0, top, width, top+48+2*pad), image.NewUniform(bg), image.Point{}, draw.Src)
		x := pad
		for _, s := range sizes {
			for _, res := range icons {
				at := image.Rect(x, top+pad+(48-s)/2, x+s, top+pad+(48-s)/2+s)
				icon := renderIcon(res, s)
				draw.Draw(sheet, at, icon, icon.Bounds().Min, draw.Over)
				x += s + pad
			}
			x += pad
		}
	}
	saveScreenshot(t, "tray-icons.png", sheet, countColours(sheet, 1000))
}

// differing is the share of pixels in which a and b differ visibly.
func differing(a, b image.Image) float64 {
	n, total := 0, 0
	for y := a.Bounds().Min.Y; y < a.Bounds().Max.Y; y++ {
		for x := a.Bounds().Min.X; x < a.Bounds().Max.X; x++ {
			total++
			ar, ag, ab, _ := a.At(x, y).RGBA()
			br, bg, bb, _ := b.At(x, y).RGBA()
			if absDiff(ar, br)+absDiff(ag, bg)+absDiff(ab, bb) > 0x6000 {
				n++
			}
		}
	}
	return float64(n) / float64(total)
}

func absDiff(a, b uint32) uint32 {
	if a > b {
		return a - b
	}
	return b - a
}
