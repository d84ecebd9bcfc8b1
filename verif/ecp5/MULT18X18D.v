// Behavioural model of the Lattice ECP5 MULT18X18D multiplier, for simulating
// pyhdl.primitives.Multiplier's ECP5 mapping in Verilator (verif/tests/test_primitives.py). Yosys
// ships MULT18X18D only as a blackbox (techlibs/ecp5/cells_bb.v), so this model is written from
// Lattice TN1267 (ECP5 sysDSP Usage Guide) and the behaviour of Lattice's simulation library,
// independently of the Amaranth mapping it checks:
//
// * P = A * B over 36 bits, each operand sign-extended when its SIGNEDA / SIGNEDB is high, else
//   zero-extended; SIGNEDA / SIGNEDB travel with the A / B input registers.
// * Four optional register stages, each enabled by its REG_*_CLK parameter: the A and B input
//   registers, the pipeline register after the multiplier and the output register. A stage whose
//   clock is "NONE" is a wire.
// * RESETMODE "SYNC": at a clock edge with the stage's reset high the stage clears to 0, whatever
//   its clock enable; otherwise it loads when its clock enable is high and holds when it is low.
//
// Modelled subset, checked at elaboration or at each edge ($fatal otherwise): every register on
// CLK0 / CE0 / RST0 (or "NONE"), RESETMODE "SYNC", SOURCEA and SOURCEB low (no shift-register
// inputs), MULT_BYPASS "DISABLED"; the C input, CLK1..3, CE1..3, RST1..3 and the cascade outputs
// are not modelled.
`default_nettype none
module MULT18X18D (
    input wire A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0,
    input wire B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0,
    input wire C17, C16, C15, C14, C13, C12, C11, C10, C9, C8, C7, C6, C5, C4, C3, C2, C1, C0,
    input wire SIGNEDA, SIGNEDB, SOURCEA, SOURCEB,
    input wire CLK3, CLK2, CLK1, CLK0, CE3, CE2, CE1, CE0, RST3, RST2, RST1, RST0,
    output wire P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19, P18, P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0
);
    parameter REG_INPUTA_CLK = "NONE";
    parameter REG_INPUTA_CE = "CE0";
    parameter REG_INPUTA_RST = "RST0";
    parameter REG_INPUTB_CLK = "NONE";
    parameter REG_INPUTB_CE = "CE0";
    parameter REG_INPUTB_RST = "RST0";
    parameter REG_INPUTC_CLK = "NONE";
    parameter REG_INPUTC_CE = "CE0";
    parameter REG_INPUTC_RST = "RST0";
    parameter REG_PIPELINE_CLK = "NONE";
    parameter REG_PIPELINE_CE = "CE0";
    parameter REG_PIPELINE_RST = "RST0";
    parameter REG_OUTPUT_CLK = "NONE";
    parameter REG_OUTPUT_CE = "CE0";
    parameter REG_OUTPUT_RST = "RST0";
    parameter CLK0_DIV = "ENABLED";
    parameter CLK1_DIV = "ENABLED";
    parameter CLK2_DIV = "ENABLED";
    parameter CLK3_DIV = "ENABLED";
    parameter HIGHSPEED_CLK = "NONE";
    parameter GSR = "ENABLED";
    parameter CAS_MATCH_REG = "FALSE";
    parameter SOURCEB_MODE = "B_SHIFT";
    parameter MULT_BYPASS = "DISABLED";
    parameter RESETMODE = "SYNC";

    localparam REG_A = REG_INPUTA_CLK != "NONE";
    localparam REG_B = REG_INPUTB_CLK != "NONE";
    localparam REG_P = REG_PIPELINE_CLK != "NONE";
    localparam REG_O = REG_OUTPUT_CLK != "NONE";

    initial begin
        if ((REG_A && REG_INPUTA_CLK != "CLK0") || (REG_B && REG_INPUTB_CLK != "CLK0")
                || (REG_P && REG_PIPELINE_CLK != "CLK0") || (REG_O && REG_OUTPUT_CLK != "CLK0")
                || REG_INPUTA_CE != "CE0" || REG_INPUTB_CE != "CE0" || REG_PIPELINE_CE != "CE0"
                || REG_OUTPUT_CE != "CE0" || REG_INPUTA_RST != "RST0" || REG_INPUTB_RST != "RST0"
                || REG_PIPELINE_RST != "RST0" || REG_OUTPUT_RST != "RST0" || REG_INPUTC_CLK != "NONE"
                || RESETMODE != "SYNC" || MULT_BYPASS != "DISABLED")
            $fatal(1, "MULT18X18D %m: configuration outside the modelled subset");
    end

    wire [17:0] a = {A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0};
    wire [17:0] b = {B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0};
    reg [17:0] a_reg = 18'h0, b_reg = 18'h0;
    reg sa_reg = 1'b0, sb_reg = 1'b0;
    reg [35:0] pipe_reg = 36'h0, out_reg = 36'h0;

    wire [17:0] a_m = REG_A ? a_reg : a;
    wire [17:0] b_m = REG_B ? b_reg : b;
    wire sa_m = REG_A ? sa_reg : SIGNEDA;
    wire sb_m = REG_B ? sb_reg : SIGNEDB;
    wire [35:0] a_ext = {{18{sa_m & a_m[17]}}, a_m};
    wire [35:0] b_ext = {{18{sb_m & b_m[17]}}, b_m};
    wire [35:0] product = a_ext * b_ext;
    wire [35:0] p_m = REG_P ? pipe_reg : product;

    always @(posedge CLK0) begin
        if (SOURCEA || SOURCEB) $fatal(1, "MULT18X18D %m: SOURCEA / SOURCEB are not modelled");
        if (RST0) begin
            a_reg <= 18'h0; b_reg <= 18'h0; sa_reg <= 1'b0; sb_reg <= 1'b0;
            pipe_reg <= 36'h0; out_reg <= 36'h0;
        end else if (CE0) begin
            a_reg <= a; b_reg <= b; sa_reg <= SIGNEDA; sb_reg <= SIGNEDB;
            pipe_reg <= product; out_reg <= p_m;
        end
    end

    assign {P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19, P18, P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0} = REG_O ? out_reg : p_m;
endmodule
`default_nettype wire
