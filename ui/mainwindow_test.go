package ui

import (
	"bytes"
	"context"
	"image"
	"image/draw"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"porthole/internal/childproc"
	"porthole/internal/desktoptest"
)

var mainWindowShownRE = regexp.MustCompile(`msg="main window shown"`)

// TestMainWindowWithoutTray runs the real GUI under Xvfb on a private
// session bus where nothing owns the StatusNotifierWatcher: the main
// window must open instead of a tray icon nobody would see. The test
// takes a screenshot of the X screen with ImageMagick's import, checks
// it, and stops the GUI with SIGTERM, which must end it cleanly too.
//
// The picture goes to the test's temporary directory, or to
// docs/screenshots/main-window.png with PORTHOLE_UPDATE_SCREENSHOTS=1.
func TestMainWindowWithoutTray(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real GUI in a child process")
	}
	display := desktoptest.Xvfb(t)
	bus := desktoptest.SessionBus(t) // no watcher on it
	child := startUIChild(t, display, bus)
	child.waitLine(t, mainWindowShownRE)

	img, colours := screenshotDrawn(t, display, "root")
	if got := img.Bounds().Size(); got != image.Pt(1280, 800) {
		t.Errorf("screenshot is %v, want the 1280x800 screen", got)
	}
	window := cropToContent(img)
	if size := window.Bounds().Size(); size.X < 400 || size.Y < 200 || size.X > 1000 || size.Y > 700 {
		t.Errorf("the window is %v; expected a small control window", size)
	}
	saveScreenshot(t, "main-window.png", window, colours)

	child.signal(t, syscall.SIGTERM)
	child.waitExit(t)
}

// screenshotDrawn takes pictures of window ("root" or an X window id)
// with ImageMagick's import until one shows something drawn: a window is
// mapped before its first frame is drawn. At most 30 s; each import takes
// a few hundred milliseconds, which paces the loop. It skips t without
// import.
func screenshotDrawn(t *testing.T, display, window string) (image.Image, int) {
	t.Helper()
	importBin := childproc.Need(t, "import", "ImageMagick's import (apt-get install imagemagick) takes the screenshots")
	shot := filepath.Join(t.TempDir(), "shot.png")
	for deadline := time.Now().Add(30 * time.Second); ; {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := exec.CommandContext(ctx, importBin, "-display", display, "-window", window, shot).CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("import: %v\n%s", err, out)
		}
		img, err := decodePNGFile(shot)
		if err != nil {
			t.Fatal(err)
		}
		if colours := countColours(img, 64); colours >= 32 {
			return img, colours
		}
		if time.Now().After(deadline) {
			t.Fatalf("window %s still shows few colours after 30 s: nothing was drawn", window)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// saveScreenshot writes img as name to the test's temporary directory, or
// to docs/screenshots/ with PORTHOLE_UPDATE_SCREENSHOTS=1 (how the
// committed pictures are made).
func saveScreenshot(t *testing.T, name string, img image.Image, colours int) {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), name)
	if os.Getenv("PORTHOLE_UPDATE_SCREENSHOTS") == "1" {
		out = filepath.Join("..", "docs", "screenshots", name)
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%v, %d bytes, %d+ colours)", out, img.Bounds().Size(), buf.Len(), colours)
}

func decodePNGFile(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return png.Decode(f)
}

// countColours counts the distinct colours of img, stopping at limit.
func countColours(img image.Image, limit int) int {
	seen := map[[4]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y && len(seen) < limit; y++ {
		for x := b.Min.X; x < b.Max.X && len(seen) < limit; x++ {
			r, g, bl, a := img.At(x, y).RGBA()
			seen[[4]uint32{r, g, bl, a}] = true
		}
	}
	return len(seen)
}

// cropToContent cuts img to the bounding box of the pixels that differ
// from its bottom-right corner (the empty X screen), i.e. the window.
func cropToContent(img image.Image) image.Image {
	b := img.Bounds()
	bg := img.At(b.Max.X-1, b.Max.Y-1)
	br, bgG, bb, ba := bg.RGBA()
	box := image.Rectangle{Min: b.Max, Max: b.Min}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, a := img.At(x, y).RGBA()
			if r == br && g == bgG && bl == bb && a == ba {
				continue
			}
			box = box.Union(image.Rect(x, y, x+1, y+1))
		}
	}
	if box.Empty() {
		return img
	}
	out := image.NewRGBA(image.Rect(0, 0, box.Dx(), box.Dy()))
	draw.Draw(out, out.Bounds(), img, box.Min, draw.Src)
	return out
}
