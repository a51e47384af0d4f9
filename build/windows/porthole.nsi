; Porthole's Windows installer, built by build/dist.sh with Debian's makensis:
;   makensis -DVERSION=… -DWINVER=a.b.c.d -DEXE=porthole.exe -DICON=porthole.ico
;            -DOUTFILE=setup.exe [-DSIGN_CMD="…"] porthole.nsi
; Per-machine install to Program Files, a Start-menu entry, an uninstaller
; registered in Apps & features. SIGN_CMD, when given, signs the uninstaller
; and the installer as they are written (%1 is the file).

Unicode true
SetCompressor /SOLID lzma
ManifestDPIAware true
RequestExecutionLevel admin

!include "MUI2.nsh"
!include "x64.nsh"
!include "LogicLib.nsh"
!include "StrFunc.nsh"
${UnStrStr}

!define APPNAME "Porthole"
!define UNINSTKEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\app.porthole.Porthole"
; The value the app writes for Start at login (app/autostart: RunValueName).
!define RUNKEY "Software\Microsoft\Windows\CurrentVersion\Run"

!ifdef SIGN_CMD
  !uninstfinalize '${SIGN_CMD}' = 0
  !finalize '${SIGN_CMD}' = 0
!endif

Name "${APPNAME}"
OutFile "${OUTFILE}"
InstallDir "$PROGRAMFILES64\${APPNAME}"
InstallDirRegKey HKLM "${UNINSTKEY}" "InstallLocation"
BrandingText "${APPNAME} ${VERSION}"

VIProductVersion "${WINVER}"
VIFileVersion "${WINVER}"
VIAddVersionKey "ProductName" "${APPNAME}"
VIAddVersionKey "ProductVersion" "${VERSION}"
VIAddVersionKey "FileVersion" "${WINVER}"
VIAddVersionKey "FileDescription" "${APPNAME} installer"
VIAddVersionKey "CompanyName" "The Porthole developers"
VIAddVersionKey "LegalCopyright" "The Porthole developers"

!define MUI_ICON "${ICON}"
!define MUI_UNICON "${ICON}"
!define MUI_FINISHPAGE_RUN "$INSTDIR\porthole.exe"
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"

Function .onInit
  ${IfNot} ${RunningX64}
    MessageBox MB_OK|MB_ICONSTOP "${APPNAME} needs 64-bit Windows."
    Abort
  ${EndIf}
  SetRegView 64
FunctionEnd

Function un.onInit
  SetRegView 64
FunctionEnd

Section "Porthole" SecMain
  SectionIn RO
  SetShellVarContext all
  SetOutPath "$INSTDIR"
  File "/oname=porthole.exe" "${EXE}"
  WriteUninstaller "$INSTDIR\uninstall.exe"
  CreateShortcut "$SMPROGRAMS\${APPNAME}.lnk" "$INSTDIR\porthole.exe" "" "$INSTDIR\porthole.exe" 0

  WriteRegStr HKLM "${UNINSTKEY}" "DisplayName" "${APPNAME}"
  WriteRegStr HKLM "${UNINSTKEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKLM "${UNINSTKEY}" "Publisher" "The Porthole developers"
  WriteRegStr HKLM "${UNINSTKEY}" "DisplayIcon" "$\"$INSTDIR\porthole.exe$\",0"
  WriteRegStr HKLM "${UNINSTKEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKLM "${UNINSTKEY}" "UninstallString" "$\"$INSTDIR\uninstall.exe$\""
  WriteRegStr HKLM "${UNINSTKEY}" "QuietUninstallString" "$\"$INSTDIR\uninstall.exe$\" /S"
  WriteRegDWORD HKLM "${UNINSTKEY}" "NoModify" 1
  WriteRegDWORD HKLM "${UNINSTKEY}" "NoRepair" 1
  SectionGetSize ${SecMain} $0
  WriteRegDWORD HKLM "${UNINSTKEY}" "EstimatedSize" $0
SectionEnd

Section "Uninstall"
  SetShellVarContext all
  ; Start at login is per user: remove the entry of the user running the
  ; uninstaller, and only when it starts this installation's porthole.exe.
  ReadRegStr $0 HKCU "${RUNKEY}" "Porthole"
  ${UnStrStr} $1 $0 "$INSTDIR\porthole.exe"
  ${If} $1 != ""
    DeleteRegValue HKCU "${RUNKEY}" "Porthole"
  ${EndIf}
  Delete "$SMPROGRAMS\${APPNAME}.lnk"
  Delete "$INSTDIR\porthole.exe"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"
  DeleteRegKey HKLM "${UNINSTKEY}"
SectionEnd
