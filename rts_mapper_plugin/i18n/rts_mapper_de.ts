<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="de_DE" sourcelanguage="en">
<context>
    <name>@default</name>
    <message>
        <location filename="../gui/dock_base.py" line="107"/>
        <source>Cancel</source>
        <translation>Abbrechen</translation>
    </message>
    <message>
        <location filename="../gui/inference_dock.py" line="98"/>
        <source>RTS Mapper: Inference</source>
        <translation>RTS Mapper: Inferenz</translation>
    </message>
    <message>
        <location filename="../gui/inference_dock.py" line="192"/>
        <source>Run inference</source>
        <translation>Inferenz starten</translation>
    </message>
    <message>
        <location filename="../gui/iterations_dock.py" line="138"/>
        <source>RTS Mapper: Iterations</source>
        <translation>RTS Mapper: Iterationen</translation>
    </message>
    <message>
        <location filename="../gui/iterations_dock.py" line="237"/>
        <source>Next iteration</source>
        <translation>Nächste Iteration</translation>
    </message>
    <message>
        <location filename="../gui/review_dock.py" line="69"/>
        <source>RTS Mapper: Review</source>
        <translation>RTS Mapper: Prüfung</translation>
    </message>
    <message>
        <location filename="../gui/training_dock.py" line="81"/>
        <source>RTS Mapper: Training</source>
        <translation>RTS Mapper: Training</translation>
    </message>
    <message>
        <location filename="../gui/training_dock.py" line="179"/>
        <source>Train</source>
        <translation>Trainieren</translation>
    </message>
    <message>
        <location filename="../gui/training_dock.py" line="179"/>
        <source>Cancel (keep best)</source>
        <translation>Abbrechen (bestes behalten)</translation>
    </message>
    <message>
        <location filename="../plugin.py" line="36"/>
        <source>Inference</source>
        <translation>Inferenz</translation>
    </message>
    <message>
        <location filename="../plugin.py" line="36"/>
        <source>Run DeepLabv3+ over a year layer</source>
        <translation>DeepLabv3+ über einen Jahreslayer laufen lassen</translation>
    </message>
    <message>
        <location filename="../processing/base.py" line="39"/>
        <source>Review</source>
        <translation>Prüfung</translation>
    </message>
    <message>
        <location filename="../plugin.py" line="36"/>
        <source>Review candidates with time-lapse imagery</source>
        <translation>Kandidaten mit Zeitreihenbildern prüfen</translation>
    </message>
    <message>
        <location filename="../plugin.py" line="36"/>
        <source>Training</source>
        <translation>Training</translation>
    </message>
    <message>
        <location filename="../plugin.py" line="36"/>
        <source>Train or fine-tune the model</source>
        <translation>Das Modell trainieren oder nachtrainieren</translation>
    </message>
    <message>
        <location filename="../plugin.py" line="36"/>
        <source>Iterations</source>
        <translation>Iterationen</translation>
    </message>
    <message>
        <location filename="../plugin.py" line="36"/>
        <source>The loop: Table 1, next iteration, inventory</source>
        <translation>Die Schleife: Tabelle 1, nächste Iteration, Inventar</translation>
    </message>
    <message>
        <location filename="../plugin.py" line="130"/>
        <source>Prepare imagery…</source>
        <translation>Bilder vorbereiten…</translation>
    </message>
    <message>
        <location filename="../plugin.py" line="130"/>
        <source>Load time-lapse layers</source>
        <translation>Zeitreihenlayer laden</translation>
    </message>
    <message>
        <location filename="../plugin.py" line="130"/>
        <source>Distribution report…</source>
        <translation>Verbreitungsbericht…</translation>
    </message>
    <message>
        <location filename="../plugin.py" line="130"/>
        <source>Environment check…</source>
        <translation>Umgebung prüfen…</translation>
    </message>
    <message>
        <location filename="../processing/base.py" line="36"/>
        <source>Setup</source>
        <translation>Einrichtung</translation>
    </message>
    <message>
        <location filename="../processing/base.py" line="37"/>
        <source>Imagery</source>
        <translation>Bilder</translation>
    </message>
    <message>
        <location filename="../processing/base.py" line="38"/>
        <source>Model</source>
        <translation>Modell</translation>
    </message>
    <message>
        <location filename="../processing/base.py" line="40"/>
        <source>Distribution analysis</source>
        <translation>Verbreitungsanalyse</translation>
    </message>
    <message>
        <location filename="../processing/distribution.py" line="119"/>
        <source>Slope, aspect and PISR from a DEM</source>
        <translation>Hangneigung, Exposition und PISR aus einem DGM</translation>
    </message>
    <message>
        <location filename="../processing/distribution.py" line="168"/>
        <source>Stream network from a DEM</source>
        <translation>Gewässernetz aus einem DGM</translation>
    </message>
    <message>
        <location filename="../processing/distribution.py" line="224"/>
        <source>Terrain, PISR and streams per RTS</source>
        <translation>Gelände, PISR und Gewässer je RTS</translation>
    </message>
    <message>
        <location filename="../processing/distribution.py" line="303"/>
        <source>Class overlay (vegetation, soil)</source>
        <translation>Klassenüberlagerung (Vegetation, Boden)</translation>
    </message>
    <message>
        <location filename="../processing/distribution.py" line="361"/>
        <source>RTS density grid</source>
        <translation>RTS-Dichteraster</translation>
    </message>
    <message>
        <location filename="../processing/distribution.py" line="425"/>
        <source>Distribution report (all steps, figures, HTML)</source>
        <translation>Verbreitungsbericht (alle Schritte, Abbildungen, HTML)</translation>
    </message>
    <message>
        <location filename="../processing/environment_check.py" line="16"/>
        <source>Environment check</source>
        <translation>Umgebung prüfen</translation>
    </message>
    <message>
        <location filename="../processing/imagery.py" line="92"/>
        <source>Prepare imagery</source>
        <translation>Bilder vorbereiten</translation>
    </message>
    <message>
        <location filename="../processing/imagery.py" line="124"/>
        <source>Build yearly mosaics</source>
        <translation>Jahresmosaike erstellen</translation>
    </message>
    <message>
        <location filename="../processing/model_engine.py" line="47"/>
        <source>Make training chips</source>
        <translation>Trainingsausschnitte erstellen</translation>
    </message>
    <message>
        <location filename="../processing/model_engine.py" line="112"/>
        <source>Train model</source>
        <translation>Modell trainieren</translation>
    </message>
    <message>
        <location filename="../processing/model_engine.py" line="189"/>
        <source>Detect RTS candidates</source>
        <translation>RTS-Kandidaten erkennen</translation>
    </message>
    <message>
        <location filename="../processing/model_engine.py" line="314"/>
        <source>Evaluate candidates against truth</source>
        <translation>Kandidaten mit der Referenz vergleichen</translation>
    </message>
    <message>
        <location filename="../processing/model_engine.py" line="359"/>
        <source>Export model as ONNX (Deepness)</source>
        <translation>Modell als ONNX exportieren (Deepness)</translation>
    </message>
    <message>
        <location filename="../processing/review.py" line="30"/>
        <source>Export time-lapse strips and GIFs</source>
        <translation>Zeitreihenstreifen und GIFs exportieren</translation>
    </message>
    <message>
        <location filename="../processing/review.py" line="81"/>
        <source>Agreement between digitisations</source>
        <translation>Übereinstimmung zwischen Digitalisierungen</translation>
    </message>
    <message>
        <location filename="../gui/install_dialog.py" line="34"/>
        <source>Install deep-learning packages…</source>
        <translation>Deep-Learning-Pakete installieren…</translation>
    </message>
    <message>
        <location filename="../plugin.py" line="130"/>
        <source>Export field package (QField)…</source>
        <translation>Feldpaket exportieren (QField)…</translation>
    </message>
    <message>
        <location filename="../plugin.py" line="130"/>
        <source>Merge field package…</source>
        <translation>Feldpaket zusammenführen…</translation>
    </message>
    <message>
        <location filename="../processing/field.py" line="60"/>
        <source>Export field package (QField)</source>
        <translation>Feldpaket exportieren (QField)</translation>
    </message>
    <message>
        <location filename="../processing/field.py" line="155"/>
        <source>Merge field package</source>
        <translation>Feldpaket zusammenführen</translation>
    </message>
</context>
</TS>
