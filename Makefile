# RTS Mapper: two commands for a newcomer (`make demo`, `make test`); the rest for developers.
# Everything runs in .venv, made from the system Python that carries QGIS's bindings.

SHELL := /bin/bash
SYSTEM_PYTHON ?= /usr/bin/python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PLUGIN := rts_mapper_plugin
VERSION := $(shell sed -n 's/^version=//p' metadata.txt)
DIST := dist
ZIP := $(DIST)/$(PLUGIN)-$(VERSION).zip
QGIS_PROFILE ?= $(HOME)/.local/share/QGIS/QGIS3/profiles/default
DEMO_OUT ?= demo_output
# Debian packages: QGIS and its Python bindings, the GDAL-linked rasterio, GEOS headers (shapely
# is built against QGIS's GEOS), the translation tools (pylupdate5, lrelease), a virtual screen, a window manager and screenshot tools for
# `make screenshot` and `make test-desktop`.
DEB_PACKAGES := qgis python3-qgis qgis-providers python3-gdal python3-rasterio python3-scipy \
	python3-matplotlib python3-pil python3-venv python3-dev libgeos-dev gcc pyqt5-dev-tools qttools5-dev-tools xvfb openbox imagemagick x11-utils xdotool
PYTEST_ENV := QT_QPA_PLATFORM=offscreen PYTHONDONTWRITEBYTECODE=1

.PHONY: help setup system-packages translations faults test test-unit test-qgis test-desktop demo lint format bench \
	package deploy screenshot clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 14

setup: system-packages $(VENV)/.installed  ## make .venv with everything (reused when unchanged)

system-packages:  ## install the Debian packages that are missing (when allowed to)
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null \
		| grep -q "ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages: $$missing"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
		else echo "Please run: sudo apt-get install $$missing" >&2; exit 1; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			$$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi; \
	$(SYSTEM_PYTHON) -c "import qgis.core" 2>/dev/null || \
		{ echo "$(SYSTEM_PYTHON) cannot import qgis: install python3-qgis" >&2; exit 1; }

$(VENV)/.installed: requirements/constraints.txt requirements/torch.txt requirements/runtime.txt requirements/dev.txt
	test -x $(PY) || $(SYSTEM_PYTHON) -m venv --system-site-packages $(VENV)
	$(PIP) install --isolated --quiet -c requirements/constraints.txt -r requirements/torch.txt
	$(PIP) install --quiet -c requirements/constraints.txt -r requirements/dev.txt
	$(PY) -c "import numpy, scipy, matplotlib, torch, torchvision, segmentation_models_pytorch, shapely, rasterio, qgis.core; \
		assert numpy.__version__ < '2', numpy.__version__"
	# like `pip install -e .`: `python -m rts_mapper_plugin` works from any folder
	echo "$(CURDIR)" > $$($(PY) -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/rts_mapper.pth
	touch $@

test: setup  ## run every test set (core without QGIS, then real QGIS), all of them even after a failure, one summary
	$(PYTEST_ENV) $(PY) tests/run_sets.py

test-unit: setup
	$(PYTEST_ENV) $(PY) -m pytest -p no:pytest_qgis tests/unit

test-qgis: setup
	$(PYTEST_ENV) $(PY) -m pytest tests/qgis

test-desktop: setup package  ## a person's day in the real QGIS desktop (Xvfb): screenshots to docs/img
	$(PY) scripts/desktop_walk.py --zip $(ZIP) --shots docs/img --report $(DIST)/desktop_walk.json

demo: setup  ## the main job on the built-in synthetic region
	$(PY) -m $(PLUGIN) demo --out $(DEMO_OUT)

lint: setup  ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

faults: setup  ## faults injected and inputs fuzzed (about 15 min); the table goes into docs/reliability.md
	$(PYTEST_ENV) $(PY) -m reliability --out docs/reliability.md

bench: setup  ## benchmarks; figures go to docs/benchmarks.md by hand
	$(PY) -m benchmarks

# translations: English is the source; each language has i18n/rts_mapper_<language>.ts (committed,
# edited with Qt Linguist) and a compiled .qm (built, shipped in the zip)
LANGUAGES := de
I18N := $(PLUGIN)/i18n
translations: system-packages  ## update the .ts files from the code's tr() strings, then compile them (.qm)
	pylupdate5 -noobsolete $$(find $(PLUGIN) -name '*.py' | sort) -ts $(foreach l,$(LANGUAGES),$(I18N)/rts_mapper_$(l).ts)
	lrelease -silent $(foreach l,$(LANGUAGES),$(I18N)/rts_mapper_$(l).ts)

package: system-packages translations  ## the zip that QGIS's "Install from ZIP" accepts
	$(SYSTEM_PYTHON) scripts/package.py --out $(ZIP)

deploy: package  ## install the zip into the default QGIS profile
	mkdir -p $(QGIS_PROFILE)/python/plugins
	rm -rf $(QGIS_PROFILE)/python/plugins/$(PLUGIN)
	cd $(QGIS_PROFILE)/python/plugins && $(SYSTEM_PYTHON) -m zipfile -e $(CURDIR)/$(ZIP) .
	@echo "Installed into $(QGIS_PROFILE)/python/plugins/$(PLUGIN); enable it in Plugins > Manage."

screenshot: setup package  ## real QGIS desktop under Xvfb: the docks, then each scene, into docs/img
	$(PY) scripts/screenshot.py --zip $(ZIP) --out docs/img/qgis_plugin.png
	$(PY) scripts/screenshot.py --zip $(ZIP) --scene inference --out $(DIST)/inference_scene_end.png
	$(PY) scripts/screenshot.py --zip $(ZIP) --scene review --out $(DIST)/review_scene_end.png
	$(PY) scripts/screenshot.py --zip $(ZIP) --scene training --timeout 1100 --out $(DIST)/training_end.png
	$(PY) scripts/screenshot.py --zip $(ZIP) --scene iteration --timeout 1500 --out $(DIST)/iteration_scene_end.png
	test -f $(DEMO_OUT)/rts_mapper_demo.qgz || $(MAKE) demo
	$(PY) scripts/screenshot.py --zip $(ZIP) --scene demo_result --out $(DIST)/demo_result_end.png \
		--scene-arg qgz=$(CURDIR)/$(DEMO_OUT)/rts_mapper_demo.qgz \
		--scene-arg gpkg=$(CURDIR)/$(DEMO_OUT)/project/rts_project.gpkg
	$(PY) scripts/screenshot.py --zip $(ZIP) --scene distribution --out $(DIST)/distribution_end.png \
		--scene-arg qgz=$(CURDIR)/$(DEMO_OUT)/rts_mapper_demo.qgz --scene-arg out=$(CURDIR)/$(DIST)/distribution_report

clean:  ## remove everything built (keeps .venv; `make clean-all` removes it too)
	rm -rf $(DIST) .pytest_cache .ruff_cache $(DEMO_OUT)
	find . -name __pycache__ -not -path "./$(VENV)/*" -prune -exec rm -rf {} +

clean-all: clean
	rm -rf $(VENV)
