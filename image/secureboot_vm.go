package image

// Secure Boot firmware: Debian's ovmf package, built with SMM (so the guest
// cannot write the variable store around the firmware), and a variable
// store with Microsoft's keys enrolled and Secure Boot enforced, as on
// machines sold today. Microsoft's UEFI CA signs Debian's shim.
var (
	OVMFCodeSecure = "/usr/share/OVMF/OVMF_CODE_4M.ms.fd"
	OVMFVarsMS     = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"
)

// secureBootArgs switches qemuArgs' firmware to the Secure Boot one: SMM
// on the machine, the flash secured, OVMFCodeSecure in place of OVMFCode.
func secureBootArgs(args []string) []string {
	out := make([]string, 0, len(args)+4)
	for i := 0; i < len(args); i++ {
		switch {
		case args[i] == "-M" && i+1 < len(args):
			out = append(out, "-M", args[i+1]+",smm=on")
			i++
		case args[i] == "if=pflash,format=raw,readonly=on,file="+OVMFCode:
			out = append(out, "if=pflash,format=raw,readonly=on,file="+OVMFCodeSecure)
		default:
			out = append(out, args[i])
		}
	}
	return append(out, "-global", "driver=cfi.pflash01,property=secure,value=on")
}
